# Shared by the POSIX hook scripts (sourced, not run). Keep it POSIX sh: azd runs hooks with `sh`.
# shellcheck shell=sh disable=SC2034 # the variables find_system_topic sets are read by the callers

# fail MESSAGE: print to stderr and exit 1 (a failure the user fixes and re-runs).
fail() {
  echo "$*" >&2
  exit 1
}

# usage MESSAGE: print to stderr and exit 2 (the script was called wrongly).
usage() {
  echo "$*" >&2
  exit 2
}

# lower TEXT: ARM ids compare case-insensitively.
lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

# find_system_topic VAULT_ID SUBSCRIPTION: the vault's Event Grid system topic (a vault has at most one).
# Sets topic, topic_group, topic_identity and topic_owner (value of the provisioning-secret-sync tag);
# topic stays empty when the vault has none. KEY_VAULT_SYSTEM_TOPIC_NAME (and _RESOURCE_GROUP) name it
# directly, for callers who cannot list the subscription's system topics.
find_system_topic() {
  topic=""
  topic_group=""
  topic_identity=""
  topic_owner=""
  fields='[name, resourceGroup, source, identity.type, tags."provisioning-secret-sync"]'
  if [ -n "${KEY_VAULT_SYSTEM_TOPIC_NAME:-}" ]; then
    rows=$(az eventgrid system-topic show --name "$KEY_VAULT_SYSTEM_TOPIC_NAME" \
      --resource-group "${KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP:-$KEY_VAULT_RESOURCE_GROUP}" \
      --subscription "$2" --query "$fields" --output tsv 2>/dev/null) || rows=""
  else
    rows=$(az eventgrid system-topic list --subscription "$2" --query "[].$fields" --output tsv) ||
      fail "Cannot list the Event Grid system topics of subscription $2: name the vault's topic with azd env set KEY_VAULT_SYSTEM_TOPIC_NAME."
  fi
  tab=$(printf '\t')
  while IFS="$tab" read -r name group source identity owner; do
    if [ -n "$name" ] && [ "$(lower "$source")" = "$(lower "$1")" ]; then
      topic="$name"
      topic_group="$group"
      topic_identity="$identity"
      topic_owner="$owner"
    fi
  done <<ROWS
$rows
ROWS
}
