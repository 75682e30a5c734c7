#!/usr/bin/env python3
"""One raw HTTP request to a vxrouter control endpoint, for the end-to-end tests.

    control_request.py --url http://127.0.0.1:4790 --method POST --path /v1/networks/42/fdb \
        --body '{"mac": "02:00:00:00:00:01", "remote": "198.18.0.2"}' [--token T] [--body-size N]

Prints one JSON line: {"status": N, "content_type": "...", "body": "..."}. Standard library only.
"""
import argparse
import http.client
import json
import sys
import urllib.parse


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:4790")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", help="request body text")
    parser.add_argument("--body-size", type=int, help="send this many bytes of 'a' as the body")
    parser.add_argument("--token", help="bearer token")
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()

    url = urllib.parse.urlparse(args.url)
    connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
    body = None
    headers = {}
    if args.body is not None:
        body = args.body.encode()
    elif args.body_size is not None:
        body = b"a" * args.body_size
    if body is not None:
        headers["Content-Type"] = "application/json"
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    try:
        connection.request(args.method, args.path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        print(json.dumps({"status": response.status, "content_type": response.getheader("content-type", ""),
                          "body": text}))
    except (ConnectionError, OSError, http.client.HTTPException) as error:
        print(json.dumps({"status": 0, "content_type": "", "body": f"{type(error).__name__}: {error}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
