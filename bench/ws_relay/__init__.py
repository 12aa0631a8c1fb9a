"""WebSocket relay benchmark: what does Parley add between the upstream and the client?

    python -m bench.ws_relay [--clients 1,50,200] [--delays 0,20] [--tokens 64]
                             [--web-workers 2] [--worker-procs 2] [--worker-threads 100]
                             [--worker-nice 10] [--profile DIR] [--ref REV] [--json FILE]

Starts its own fake upstream (`tests.fake_openai`), gunicorn web tier and threaded RQ
worker processes (at a lower CPU priority than the web tier) on a benchmark database
(`parley_bench`, dropped and re-created) and Redis db 5 (flushed), then for every delay D
(ms/token) and client count N measures:

* DIRECT: N threads stream one completion each straight from the fake upstream with the
  `openai` client (the same call the worker makes);
* RELAYED: N WebSocket clients (each its own user and chat, socket opened and welcomed
  before timing starts) each POST one message and read the reply's events.

Time to first token (TTFT) runs from the request being sent (the `create()` call, the
POST) to the first content token (first non-empty delta, first `ai_response_chunk`).
Inter-token latency (ITL) is per TOKEN: a chunk event holding k tokens (counted as
`t<i> ` matches) that arrives `g` after the previous one counts as k gaps of g/k.
Tokens/s is all tokens received by all clients / wall time from the first request sent to
the last reply finished. Every reply is checked against the expected text
(`t0 t1 ... t63 `): a reply that is short, wrong, late, or ends in `ai_error` is an error.

Everything shares the machine's cores (benchmark, fake upstream, gunicorn, worker,
PostgreSQL, Redis): per-phase CPU use of each is printed from /proc to show where time goes.
"""
