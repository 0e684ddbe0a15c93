"""Every README statement of the form "the function does X when Y", and the conformance tests that back it
through Microsoft's worker library (issue 9, item 5).

Each entry is (README section, a quote from README.md, tests as ``module::test`` without parameters).
``test_conformance_readme.py`` checks both directions that can rot: every quote is still in the README
(whitespace-normalised) and every named test exists. Statements about the ledger's blob storage and the
reconcile timer's behaviour are backed by their own suites (Azurite ledger tests, reconcile tests); the timer's
indexing is here.
"""

from __future__ import annotations

EVENTS = "test_conformance_events"
HTTP = "test_conformance_http"
PAUSE = "test_conformance_pause"
INDEXING = "test_conformance_indexing"
TIMER = "test_conformance_timer"

STATEMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # --- the product promises at the top of the README ---
    ("intro", "only then writes them with `PUT /servicePrincipals/{id}/synchronization/secrets`",
     (f"{EVENTS}::test_a_new_version_event_rotates_the_job",)),
    ("intro", "A job that was quarantined because its old token expired is started again",
     (f"{EVENTS}::test_a_new_version_event_rotates_the_job",)),
    ("intro", "anything but a 2xx from `validateCredentials` stops the push",
     (f"{EVENTS}::test_a_permanent_failure_is_a_successful_invocation_logged_at_error",
      f"{HTTP}::test_a_permanent_target_failure_is_422")),
    ("intro", "stored keys the config does not name are carried along",
     (f"{EVENTS}::test_a_new_version_event_rotates_the_job",)),
    ("intro", "the version an event names is ignored",
     (f"{EVENTS}::test_a_new_version_event_rotates_the_job",)),
    ("intro", "never leaks a secret value** into logs, responses, exceptions or `repr`s — tested with canary values",
     ("conftest::estate",)),
    # --- HTTP API ---
    ("HTTP API", "Neither selects every target (an empty body too).",
     (f"{HTTP}::test_no_selection_syncs_every_target",)),
    ("HTTP API", "`targets` (target names) or `secrets` (Key Vault secret names: every target using one)",
     (f"{HTTP}::test_selection_by_target_and_by_secret",)),
    ("HTTP API", "`dryRun` (`true`: resolve and validate, push nothing)",
     (f"{HTTP}::test_a_dry_run_validates_and_pushes_nothing",)),
    ("HTTP API", "Both, an empty list, a wrong type or an unknown field is a 400",
     (f"{HTTP}::test_malformed_bodies_are_400_and_nothing_runs",)),
    ("HTTP API", "an unknown name is a 404 and nothing runs",
     (f"{HTTP}::test_unknown_names_are_404_and_nothing_runs",)),
    ("HTTP API", "Callers choose *which* configured targets run — never a service principal",
     (f"{HTTP}::test_malformed_bodies_are_400_and_nothing_runs",)),
    ("HTTP API", "The invocation id is in the body and in the `x-invocation-id` header.",
     (f"{HTTP}::test_a_sync_pushes_and_answers_the_documented_json",
      f"{HTTP}::test_unknown_names_are_404_and_nothing_runs")),
    ("HTTP API", "| 200 | every selected target succeeded |",
     (f"{HTTP}::test_a_sync_pushes_and_answers_the_documented_json",)),
    ("HTTP API", "| 400 | malformed body (`RequestInvalid`) |",
     (f"{HTTP}::test_malformed_bodies_are_400_and_nothing_runs",)),
    ("HTTP API", "| 404 | a named target or secret is not in the config (`UnknownTarget`, `UnknownSecret`) |",
     (f"{HTTP}::test_unknown_names_are_404_and_nothing_runs",)),
    ("HTTP API", "| 413 | a body over 1 MiB (`RequestTooLarge`) |",
     (f"{HTTP}::test_a_body_over_one_mebibyte_is_413",)),
    ("HTTP API", "| 422 | at least one target failed, none retryably (e.g. `CredentialsRejected`) |",
     (f"{HTTP}::test_a_permanent_target_failure_is_422",)),
    ("HTTP API", "| 503 | at least one target failed retryably",
     (f"{HTTP}::test_a_retryable_target_failure_is_503",)),
    ("HTTP API", "| 500 | only for an invalid `SYNC_CONFIG` (`ConfigInvalid`, listing every offending field) |",
     (f"{HTTP}::test_an_invalid_config_is_500_listing_every_field",)),
    ("HTTP API", "a JSON array is a batch of Event Grid events",
     (f"{HTTP}::test_an_event_grid_batch_syncs_each_target_once",)),
    ("HTTP API", "a body with `specversion` is a CloudEvent",
     (f"{HTTP}::test_a_cloud_event_delivery_syncs",)),
    ("HTTP API", "Event Grid schema: `{\"validationResponse\": code}`",
     (f"{HTTP}::test_the_event_grid_validation_handshake_needs_no_config",)),
    ("HTTP API", "CloudEvents: `OPTIONS` with `WebHook-Request-Origin` → 200 with `WebHook-Allowed-Origin`",
     (f"{HTTP}::test_the_cloud_events_options_handshake",)),
    ("HTTP API", "before anything else, without needing a valid config",
     (f"{HTTP}::test_the_event_grid_validation_handshake_needs_no_config",
      f"{HTTP}::test_the_cloud_events_options_handshake")),
    ("HTTP API", "Deliveries answer 200 once every event is handled or has failed permanently (failures listed under "
                 "`events` and logged with their code)",
     (f"{HTTP}::test_a_malformed_event_in_a_batch_is_listed_and_acknowledged",
      f"{HTTP}::test_webhook_answers_503_for_retryable_and_200_for_permanent_failures")),
    ("HTTP API", "503 when a failure is retryable or the config is invalid",
     (f"{HTTP}::test_webhook_answers_503_for_retryable_and_200_for_permanent_failures",
      f"{HTTP}::test_webhook_with_an_invalid_config_is_503")),
    ("HTTP API", "400 when the batch itself is malformed",
     (f"{HTTP}::test_a_malformed_batch_is_400",)),
    ("HTTP API", "No input produces any other 5xx.",
     (f"{HTTP}::test_no_input_produces_another_5xx",)),
    # --- Key Vault events ---
    ("Key Vault events", "sync every target that uses that secret in that vault (reading the current version)",
     (f"{EVENTS}::test_a_new_version_event_rotates_the_job",
      f"{EVENTS}::test_only_the_targets_that_use_the_secret_are_synced")),
    ("Key Vault events", "no Key Vault or Graph call; one warning per affected target naming the job and the "
                         "expiry time",
     (f"{EVENTS}::test_expiry_events_warn_per_target_without_calls",)),
    ("Key Vault events", "anything else, or a secret/vault no target uses | acknowledged, logged at debug, no call",
     (f"{EVENTS}::test_other_events_are_acknowledged_at_debug_without_calls",)),
    ("Key Vault events", "Data keys are read case-insensitively with surrounding spaces stripped",
     (f"{EVENTS}::test_data_keys_are_read_case_insensitively_with_spaces_stripped",)),
    ("Key Vault events", "The function raises — so the runtime and Event Grid deliver again — only when a target "
                         "failed retryably or `SYNC_CONFIG` is invalid",
     (f"{EVENTS}::test_a_retryable_failure_is_a_failed_invocation",
      f"{EVENTS}::test_an_invalid_config_is_a_failed_invocation")),
    ("Key Vault events", "permanent failures and malformed events are logged at error level with their code and "
                         "acknowledged",
     (f"{EVENTS}::test_a_permanent_failure_is_a_successful_invocation_logged_at_error",
      f"{EVENTS}::test_a_malformed_event_is_acknowledged_and_logged_at_error")),
    # --- the pause switch ---
    ("pause", "the Event Grid trigger fails its invocation",
     (f"{PAUSE}::test_the_event_grid_trigger_fails_its_invocation_and_pushes_nothing",)),
    ("pause", "the webhook answers 503 `SyncPaused`",
     (f"{PAUSE}::test_the_webhook_answers_503_sync_paused",)),
    ("pause", "`POST /api/sync` answers 503 (a dry run still answers: it pushes nothing)",
     (f"{PAUSE}::test_post_sync_answers_503_but_a_dry_run_still_answers",)),
    ("pause", "Handshakes are answered as always.",
     (f"{PAUSE}::test_handshakes_are_answered_as_always",)),
    ("pause", "the timer logs `SyncPaused` and skips",
     (f"{PAUSE}::test_the_timer_logs_and_skips",)),
    # --- the reconcile timer ---
    ("reconcile", "a target never pushed, or whose Key Vault versions differ from the record, is synced",
     (f"{TIMER}::test_a_tick_catches_up_a_lost_event",)),
    ("reconcile", "otherwise Graph is asked whether the job's saved credentials still validate",
     (f"{TIMER}::test_a_tick_on_an_up_to_date_target_checks_the_saved_credentials_and_pushes_nothing",)),
    ("reconcile", "a token replaced by hand or revoked gets Key Vault's values if those validate",
     (f"{TIMER}::test_a_token_replaced_by_hand_gets_key_vaults_value_back",)),
    ("reconcile", "Secrets expiring within 30 days are reported once a day per version (`SecretNearExpiry`)",
     (f"{TIMER}::test_an_expiring_secret_is_reported_once_a_day",)),
    ("reconcile", "only retryable failures fail the invocation",
     (f"{TIMER}::test_a_retryable_failure_fails_the_invocation",
      f"{TIMER}::test_a_permanent_failure_is_reported_and_the_invocation_succeeds")),
    # --- reliability and performance, logs ---
    ("performance", "A warm invocation for one target makes exactly one Key Vault GET, one validateCredentials, one "
                    "GET and one PUT of the secrets (plus one job GET when quarantine resumption needs it) — no token "
                    "request, no challenge.",
     (f"{HTTP}::test_a_warm_invocation_makes_only_the_documented_calls",)),
    ("Logs", "One structured record per target outcome (`TargetSyncOutcome`",
     (f"{EVENTS}::test_a_new_version_event_rotates_the_job",)),
    # --- what infra/ and the README name ---
    ("HTTP API", "## HTTP API: `POST /api/sync` (function key)",
     (f"{INDEXING}::test_sync_is_post_and_options_on_route_sync_with_a_function_key",)),
    ("Key Vault events", "## Key Vault events (Event Grid trigger `keyvault_events`)",
     (f"{INDEXING}::test_keyvault_events_is_the_event_grid_trigger_infra_subscribes",)),
    ("reconcile", "**The reconcile timer** (`reconcile`, schedule `SYNC_RECONCILE_SCHEDULE`",
     (f"{INDEXING}::test_reconcile_is_a_timer_on_the_schedule_setting_infra_sets",)),
)  # fmt: skip
