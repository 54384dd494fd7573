#!/usr/bin/env bash
# The pull request report of one stack: plan BASE and HEAD (each commit with its own code, in its own
# worktree), then write the comment (plan summary, diff, policy, cost, diagram) to OUT_DIR/comment-STACK.md.
# Exit status: the head plan's (1 on a mandatory policy violation or a failed program), after the comment
# is written, so the workflow can post it and still fail.
#
#   .github/scripts/pr-report.sh BASE_REF HEAD_REF STACK OUT_DIR
#
# PLATFORMCTL is how platformctl runs inside a checkout (default `uv run --frozen platformctl`, which
# syncs that checkout's own environment); tests point it at an installed one.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 BASE_REF HEAD_REF STACK OUT_DIR" >&2
  exit 2
fi
base_ref=$1 head_ref=$2 stack=$3
mkdir -p "$4"
out_dir=$(cd "$4" && pwd)
read -r -a platformctl <<<"${PLATFORMCTL:-uv run --frozen platformctl}"

work=$(mktemp -d)
cleanup() {
  git worktree remove --force "$work/base" >/dev/null 2>&1 || true
  git worktree remove --force "$work/head" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
git worktree add --quiet --detach "$work/base" "$base_ref"
git worktree add --quiet --detach "$work/head" "$head_ref"

base_args=()
if (cd "$work/base" && "${platformctl[@]}" plan "$stack" --project-dir "$work/base" --no-tree --no-policy \
  --json "$out_dir/base-$stack.json" >"$out_dir/base-$stack.log" 2>&1); then
  base_args=(--base "$out_dir/base-$stack.json" --base-project-dir "$work/base")
else
  echo "the base ($base_ref) could not be planned; see $out_dir/base-$stack.log" >&2
fi

status=0
(cd "$work/head" && "${platformctl[@]}" plan "$stack" --project-dir "$work/head" --no-tree \
  --policy-pack "$work/head/policy" --json "$out_dir/head-$stack.json") >"$out_dir/head-$stack.log" 2>&1 || status=$?
if [[ ! -s "$out_dir/head-$stack.json" ]]; then
  cat "$out_dir/head-$stack.log" >&2
  exit "$((status == 0 ? 1 : status))"
fi

commit=$(git rev-parse "$head_ref")
(cd "$work/head" && "${platformctl[@]}" pr-comment "$stack" --project-dir "$work/head" \
  --policy-pack "$work/head/policy" --head "$out_dir/head-$stack.json" "${base_args[@]}" \
  --commit "$commit" --output "$out_dir/comment-$stack.md")
echo "comment for $stack written to $out_dir/comment-$stack.md"
exit "$status"
