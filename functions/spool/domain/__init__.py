"""Domain logic: pure Python, no boto3. Talks to the outside world only through the ports in `ports`."""
