"""Create or edit, in place, the pull request comment that carries MARKER (one comment per stack, not one per push).

Standard library only, so it runs before `uv sync`. GITHUB_TOKEN authenticates; GITHUB_API_URL (set by
Actions; a test points it at a local fake) is the API root.

    python .github/scripts/upsert_comment.py --repo OWNER/NAME --pr 12 --marker '<!-- x -->' --body-file c.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from typing import Any

PER_PAGE = 100


def call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the Actions API root
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Accept", "application/vnd.github+json")
    request.add_header("X-GitHub-Api-Version", "2022-11-28")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)


def find_comment(api: str, repo: str, pr: int, marker: str, token: str) -> int | None:
    page = 1
    while True:
        comments = call("GET", f"{api}/repos/{repo}/issues/{pr}/comments?per_page={PER_PAGE}&page={page}", token)
        for comment in comments:
            if marker in (comment.get("body") or ""):
                return int(comment["id"])
        if len(comments) < PER_PAGE:
            return None
        page += 1


def upsert(api: str, repo: str, pr: int, marker: str, body: str, *, token: str) -> str:
    if marker not in body:
        body = f"{marker}\n{body}"
    existing = find_comment(api, repo, pr, marker, token)
    if existing is None:
        call("POST", f"{api}/repos/{repo}/issues/{pr}/comments", token, {"body": body})
        return "created"
    call("PATCH", f"{api}/repos/{repo}/issues/comments/{existing}", token, {"body": body})
    return f"updated {existing}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--pr", required=True, type=int)
    parser.add_argument("--marker", required=True)
    parser.add_argument("--body-file", required=True)
    args = parser.parse_args()
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        print("upsert_comment: GITHUB_TOKEN is not set", file=sys.stderr)
        return 2
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    with open(args.body_file, encoding="utf-8") as handle:
        body = handle.read()
    print(f"comment {upsert(api, args.repo, args.pr, args.marker, body, token=token)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
