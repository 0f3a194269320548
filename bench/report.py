"""The readable table `make bench` prints, from the same dictionary it writes to .bench/results.json."""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.common import RESULTS


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Spool benchmarks  {results['generated']}{'  (quick)' if results.get('quick') else ''}",
        f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, load at start {m['load_average_at_start']}",
        "",
        f"{'key':<34} {'value':>8}  {'target':<9} {'result':<7} what",
        f"{'-' * 34} {'-' * 8}  {'-' * 9} {'-' * 7} {'-' * 44}",
    ]
    for key, target in results["targets"].items():
        if key not in results:
            continue
        goal = "report" if target["target"] is None else f"{target['comparison']} {target['target']}"
        lines.append(f"{key:<34} {results[key]:>8.3f}  {goal:<9} {results['verdicts'][key]:<7} {target['what']}")
    details = results["details"]
    for name, section in (
        ("B1", _b1),
        ("B2", _b2),
        ("B3", _b3),
        ("B4", _b4),
        ("B5", _b5),
        ("B6", _b6),
        ("B7", _b7),
    ):
        if name in details:
            lines += ["", *section(details[name])]
    if results.get("more_figures"):
        lines += ["", "more figures (also in results.json):"]
        lines += [f"   {key:<52} {value:>8g}" for key, value in results["more_figures"].items()]
    lines += ["", f"this run: {results['seconds']['total']:.0f} s; per benchmark: {_times(results['seconds'])}"]
    return "\n".join(lines)


def _times(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items() if name != "total")


def _b1(d: dict[str, Any]) -> list[str]:
    rows = ["B1 sink handler vs reference, CPU us per event (median of rounds)"]
    rows.append(f"   {'case':<44} {'sink':>9} {'reference':>10} {'ratio':>7}")
    for case, f in d["cases"].items():
        count, rest = case.split("x")
        spread, _, per_message = rest.partition("/")
        label = f"{int(count):,} events, {spread.removesuffix('ep')} endpoint(s), {per_message or 1}/message"
        rows.append(f"   {label:<44} {f['subject_us']:>9.2f} {f['reference_us']:>10.2f} {f['ratio']:>7.2f}")
    for case, f in d.get("parquet_cases", {}).items():
        count, rest = case.split("x")
        spread, _, per_message = rest.partition("/")
        label = f"Parquet: {int(count):,} events, {spread.removesuffix('ep')} endpoint(s), {per_message}/message"
        rows.append(f"   {label:<44} {f['subject_us']:>9.2f} {f['reference_us']:>10.2f} {f['ratio']:>7.2f}")
    return rows


def _b2(d: dict[str, Any]) -> list[str]:
    f = d["batch"]
    return [
        "B2 api handler vs reference, batch ingest of 100 events, CPU us per event",
        f"   api {f['subject_us']:.2f}, reference {f['reference_us']:.2f}, ratio {f['ratio']:.2f}",
    ]


def _b3(d: dict[str, Any]) -> list[str]:
    cpu, wall = d["cpu_ms"], d["wall_ms"]
    rows = [
        f"B3 cold start: whole-process import, median of {d['runs']} runs (CPU ms / wall ms)",
        f"   python -c pass {cpu['python']:.0f}/{wall['python']:.0f}, "
        f"import boto3 {cpu['boto3']:.0f}/{wall['boto3']:.0f}",
        f"   spool.handlers.api {cpu['api']:.0f}/{wall['api']:.0f} ({d['ratio_cpu']['api']:.2f}x boto3), "
        f"spool.handlers.sink {cpu['sink']:.0f}/{wall['sink']:.0f} ({d['ratio_cpu']['sink']:.2f}x)",
    ]
    if "api_first" in cpu:
        first = d["first_request_vs_boto3"]
        primed = d["primed_invocation_cpu_ms"]
        rows.append(
            f"   first request after a cold start (import + first invocation): api {cpu['api_first']:.0f}/"
            f"{wall['api_first']:.0f} ({first['api']:.2f}x boto3), sink {cpu['sink_first']:.0f}/"
            f"{wall['sink_first']:.0f} ({first['sink']:.2f}x)"
        )
        rows.append(
            f"   first invocation after SnapStart's prime() (a restored environment, less the restore): "
            f"api {primed['api']:.0f}, sink {primed['sink']:.0f} CPU ms"
        )
    nc = d.get("without_bytecode_cache")
    if nc:
        rows.append(
            f"   no .pyc (as bundled today, median of {nc['runs']}): boto3 {nc['cpu_ms']['boto3']:.0f}, "
            f"api {nc['cpu_ms']['api']:.0f} ({nc['ratio_cpu']['api']:.2f}x), "
            f"sink {nc['cpu_ms']['sink']:.0f} ({nc['ratio_cpu']['sink']:.2f}x) CPU ms"
        )
    if "sink_parquet" in cpu:
        rows.append(
            f"   sink + pyarrow (first Parquet flush) {cpu['sink_parquet']:.0f}/{wall['sink_parquet']:.0f} "
            f"= {d['parquet_vs_sink_cpu']:.2f}x the sink's CPU"
            + (f"; no .pyc {nc['cpu_ms']['sink_parquet']:.0f} ({nc['parquet_vs_sink_cpu']:.2f}x)" if nc else "")
        )
    return rows


def _b4(d: dict[str, Any]) -> list[str]:
    s = d["settings"]
    rows = [
        f"B4 objects for {s['events']:,} events to one endpoint (batchSize {s['batchSize']}, flush "
        f"{s['flushIntervalSeconds']} s), {s['events_per_request']}/request over {s['send_seconds']:.0f} s, "
        f"{s['pollers']} pollers (batch {s['esm_batch_size']}, window {s['esm_window_seconds']} s)"
    ]
    for label, key in (("hold-back on ", "hold_back"), ("hold-back off", "no_hold_back")):
        r = d[key]
        rows.append(
            f"   {label}: {r['objects']} objects / ideal {r['ideal']} = {r['ratio']:.3f}; {r['full_objects']} full, "
            f"smallest {r['smallest_object']} line{'' if r['smallest_object'] == 1 else 's'}; "
            f"duplicates {r['duplicate_lines']}; "
            f"sent in {r['send_seconds']:.1f} s (late {r['max_late_s']:.1f} s)"
        )
    return rows


def _b5(d: dict[str, Any]) -> list[str]:
    rows = []
    for label, r in (("local runtime window", d), ("deployed window", d.get("with_deployed_window"))):
        if not r:
            continue
        s, lat = r["settings"], r["latency_s"]
        rows.append(
            f"   {label} {s['esm_window_seconds']:g} s: p50 {lat['p50']:.2f}, p90 {lat['p90']:.2f}, "
            f"p99 {lat['p99']:.2f}, max {lat['max']:.2f} s -> p99 - interval = {r['p99_minus_interval_s']:.2f} s"
        )
    s = d["settings"]
    head = (
        f"B5 object visible - accepted, {s['events']} events at ~{s['rate_per_second']:g}/s to {s['endpoints']} "
        f"endpoints (flush {s['flushIntervalSeconds']} s), {d['samples']} samples"
    )
    return [head, *rows]


def _b6(d: dict[str, Any]) -> list[str]:
    batch, single = d["batch"], d["single"]
    sealed = d.get("manifests")
    phases = [("batch", batch), ("single", single), *([("manifests", sealed)] if sealed else [])]
    s = d["settings"]
    rows = [
        f"B6 cost per million ~{batch['mean_line_bytes']:.0f} B events, us-east-1 list prices "
        f"({d['prices']['recorded']}), {s['architecture']}, api {s['api_memory_mb']} MB, sink {s['sink_memory_mb']} MB;"
        f" endpoint batchSize {s['batchSize']}, ESM batch {s['esm_batch_size']} / window {s['esm_window_seconds']} s",
        f"   Amazon Data Firehose (5 KB per record): ${batch['firehose_usd_per_million']:.4f}",
        f"   batch ingest (100/request): ${batch['total_usd_per_million']:.4f} = "
        f"{batch['ratio_to_firehose']:.2f}x Firehose",
        f"   single-event ingest:        ${single['total_usd_per_million']:.4f} = "
        f"{single['ratio_to_firehose']:.2f}x Firehose",
        *(
            [
                f"   batch, minute folders sealed: ${sealed['total_usd_per_million']:.4f} = "
                f"{sealed['ratio_to_firehose']:.2f}x Firehose ({sealed['manifests']} manifests)"
            ]
            if sealed
            else []
        ),
        f"   {'cost item, USD per million events':<44}" + "".join(f" {label:>9}" for label, _ in phases),
    ]
    items = list(dict.fromkeys(item for _, phase in phases for item in phase["costs_usd_per_million"]))
    for item in items:
        rows.append(
            f"   {item:<44}" + "".join(f" {phase['costs_usd_per_million'].get(item, 0.0):>9.4f}" for _, phase in phases)
        )
    rows.append(f"   {'requests (or units) per million events':<44}" + "".join(f" {label:>9}" for label, _ in phases))
    names = list(dict.fromkeys(name for _, phase in phases for name in phase["requests_per_million"]))
    for name in names:
        rows.append(
            f"   {name:<44}" + "".join(f" {phase['requests_per_million'].get(name, 0.0):>9,.0f}" for _, phase in phases)
        )
    for label, phase in phases:
        n = phase["notes"]
        rows.append(
            f"   {label}: api {n['api_mean_wall_ms']:.1f} ms wall / {n['api_mean_cpu_ms']:.1f} ms CPU per invocation, "
            f"sink {n['sink_mean_wall_ms']:.1f} / {n['sink_mean_cpu_ms']:.1f} ms for "
            f"{n.get('sink_mean_records_per_invocation', 0):.0f} records; {n.get('sqs_empty_receives', 0)} empty "
            f"receives (idle polling, not per event); not in the total: tenant S3 PUTs "
            f"${n['tenant_s3_put_usd_per_million']:.3f}, "
            f"X-Ray (tracing on) up to ${n['xray_upper_bound_usd_per_million']:.3f}"
        )
    return rows


def _b7(d: dict[str, Any]) -> list[str]:
    return [
        f"B7 sink with a {d['payload_mb']:.1f} MB batch ({d['records']:,} records, one {d['object_mb']:.1f} MB object)",
        f"   peak RSS {d['peak_rss_mb']:.1f} MB: after imports {d['baseline_rss_mb']:.1f}, with the event "
        f"{d['rss_with_event_mb']:.1f}; Python heap peak inside the handler {d['handler_heap_peak_mb']:.1f} MB",
        *(
            [
                f"   Parquet endpoint: peak RSS {p['peak_rss_mb']:.1f} MB (after imports {p['baseline_rss_mb']:.1f}), "
                f"one {p['object_mb']:.1f} MB object; heap peak inside the handler {p['handler_heap_peak_mb']:.1f} MB"
            ]
            if (p := d.get("parquet"))
            else []
        ),
    ]


if __name__ == "__main__":  # print the table of the last run again
    print(render(json.loads(RESULTS.read_text())))
    sys.exit(0)
