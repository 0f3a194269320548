"""`make dev`: run Spool locally until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading

from spool.local.runtime import POWERTOOLS_ENVIRONMENT, LocalRuntime, LocalSettings


def main() -> int:
    # The process's entry point: Powertools reads its settings from the environment (the runtime sets none).
    for name, value in POWERTOOLS_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    settings = LocalSettings.from_env()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("Starting Spool locally ...", flush=True)
    try:
        runtime = LocalRuntime(settings).start()
    except OSError as exc:
        print(
            f"could not start: {exc} (ports are set by SPOOL_DEV_PORT and SPOOL_DEV_AWS_PORT)",
            file=sys.stderr,
        )
        return 1
    print(
        f"""
Spool is running.
  API:          {runtime.api_url}   (GET /health, /api/v1/...)
  AWS emulator: {runtime.aws_url}   (S3 bucket 'my-webhook-archive' is ready)
  local store:  {settings.state_dir}/data/
  dev tenant:   {runtime.tenant_id}
  API key:      {runtime.api_key}   (also in {settings.state_dir}/dev-api-key)
Press Ctrl-C to stop.""",
        flush=True,
    )
    stop.wait()
    print("Stopping ...", flush=True)
    runtime.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
