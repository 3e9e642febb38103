#!/usr/bin/env bash
# A script written for BlueMind's DataProtect API (IDataProtect and ITask), as BlueMind's documentation calls it:
# curl with the X-BM-ApiKey header, JSON read with jq. It runs unchanged against bm-dataprotect.
#
#   BM_URL=https://bluemind.example.com BM_APIKEY=... bash bluemind-compat.sh
#
# Backup now, follow the task to its end, list the generations, read the policy and the restore capabilities,
# read a generation's content, restore a user's calendars from it, and read the restore's logs.
set -euo pipefail

: "${BM_URL:?BM_URL: the server, e.g. https://bluemind.example.com}"
: "${BM_APIKEY:?BM_APIKEY: an API key of an administrator}"

DP="${BM_URL}/api/dataprotect"
TASKS="${BM_URL}/api/tasks"

bm() {
  curl -sS --fail-with-body -H "X-BM-ApiKey: ${BM_APIKEY}" -H "Content-Type: application/json" "$@"
}

# Polls a task until it ends; fails with its last log entry when it ends in error.
wait_task() {
  local task=$1 status state
  while true; do
    status=$(bm "${TASKS}/${task}")
    state=$(echo "${status}" | jq -r .state)
    case "${state}" in
      Success) return 0 ;;
      InError) echo "task ${task} failed: $(echo "${status}" | jq -r .lastLogEntry)" >&2; return 1 ;;
    esac
    sleep 1
  done
}

echo "== backup"
task=$(bm -X POST "${DP}/_backup" | jq -r .id)
echo "backup task ${task}"
wait_task "${task}"
bm "${TASKS}/${task}/_currentLogs?offset=0" | jq -r '.[]' | tail -n 3

echo "== generations"
generations=$(bm "${DP}/generations")
echo "${generations}" | jq -r '.[] | "generation \(.id) of \(.protectionTime / 1000 | floor | todate), BlueMind \(.blueMind.major).\(.blueMind.minor), \(.parts | length) parts, errors: \(.withErrors)"'
generation=$(echo "${generations}" | jq -r '.[-1].id')

echo "== policy"
bm "${DP}/policy" | jq -c .

echo "== restore capabilities"
bm "${DP}/restore/_capabilities" | jq -r '.[] | "\(.identifier) \(.kind)"'
echo "with the mail part:"
bm -X GET "${DP}/restore/_capabilities_by_tags" -d '["mail/imap"]' | jq -r '.[] | select(.requiredTag == "mail/imap") | .identifier' | sort -u

echo "== content of generation ${generation}"
task=$(bm -X POST "${DP}/_content/${generation}" | jq -r .id)
wait_task "${task}"
content=$(bm "${TASKS}/${task}" | jq -r .result)
echo "${content}" | jq -r '"\(.domains | length) domains, \(.entries | length) entries"'
user=$(echo "${content}" | jq -r '[.entries[] | select(.value.kind == "USER")][0]')
uid=$(echo "${user}" | jq -r .uid)
domain=$(echo "${user}" | jq -r .value.domainUid)
name=$(echo "${user}" | jq -r .displayName)

echo "== restore the calendars of ${name} (${uid}@${domain}) from generation ${generation}"
task=$(bm -X POST "${DP}/restore" \
  -d '{"restoreOperationIdenfitier":"replace.calendars","generation":'"${generation}"',"item":{"kind":"USER","entryUid":"'"${uid}"'","domainUid":"'"${domain}"'","displayName":"'"${name}"'"}}' \
  | jq -r .id)
echo "restore task ${task}"
wait_task "${task}"
echo "logs:"
bm "${TASKS}/${task}/_currentLogs?offset=0" | jq -r '.[]'
echo "end of the log stream:"
bm "${TASKS}/${task}/_log" | jq -c 'select(.end) | {end: .end, status: (.status | fromjson | .state)}'
echo "restore ${task} done"
