"""The container's health check: exits 0 when the app's /healthz answers 200, 1 otherwise.

Standard library only, and run as a file (``python config/healthcheck.py``) so that it loads
neither Django nor Celery every few seconds. It asks over plain http on 127.0.0.1 with the
first name of ALLOWED_HOSTS as Host, so Django's host check and the https redirect (which
exempts /healthz) let it through.
"""

import os
import sys
import urllib.error
import urllib.request


def host_header():
    for name in os.environ.get("ALLOWED_HOSTS", "").split(","):
        name = name.strip()
        if name and name != "*" and not name.startswith("."):
            return name
    return "localhost"


def main():
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz",
                                     headers={"Host": host_header()})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            print(response.read().decode())
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode())
    except OSError as e:
        print(f"no answer: {e}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
