"""Azure Functions entry points (Python v2 programming model).

Thin on purpose: bindings in, one call into ``shared.triggers.service``, responses out. Importing this module
imports only ``azure.functions`` and the small ``shared.triggers.bootstrap``; the SDKs load on first use.
"""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func

from shared.triggers.bootstrap import AppState

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

#: Process-wide: built lazily on first invocation, reused by later ones (tokens stay cached).
state = AppState(app_root=Path(__file__).resolve().parent)


@app.function_name("sync")
@app.route(route="sync", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
def sync_http(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    invocation_id = state.invocation_id(context)
    answer = state.service().handle_http(req.method, dict(req.headers), req.get_body() or b"", invocation_id)
    headers = {"x-invocation-id": invocation_id, **answer.headers}
    return func.HttpResponse(
        json.dumps(answer.body), status_code=answer.status, headers=headers, mimetype="application/json"
    )


@app.function_name("keyvault_events")
@app.event_grid_trigger(arg_name="event")
def keyvault_events(event: func.EventGridEvent, context: func.Context) -> None:
    state.service().handle_trigger_event(event, state.invocation_id(context))


@app.function_name("reconcile")
@app.timer_trigger(arg_name="timer", schedule="%SYNC_RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def reconcile(timer: func.TimerRequest, context: func.Context) -> None:
    state.service().handle_timer(state.invocation_id(context), past_due=timer.past_due)
