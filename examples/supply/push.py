"""Push a file to a ``supply.inbox`` source with an HMAC-SHA256 signature (what a partner does).

    PARTNER_HMAC_KEY=... python examples/supply/push.py http://127.0.0.1:8088/inbox ASN.edi
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from floorstream.adapters.supply.inbox import sign


def main() -> int:
    url, path = sys.argv[1], Path(sys.argv[2])
    body = path.read_bytes()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "X-Signature-256": sign(os.environ["PARTNER_HMAC_KEY"], body),
        "X-Filename": path.name})
    with urllib.request.urlopen(request, timeout=60) as response:
        print(response.status, response.read().decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
