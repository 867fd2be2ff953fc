"""A fake Stripe: real HTTP on loopback, threads, enough state to drive a Checkout flow.

stripe-mock is stateless (no metadata echo, no state changes), so it cannot drive Checkout; this
fake keeps sessions, payment intents, charges, balance transactions and disputes in memory and:

- serves the API endpoints ``fundcircle.integrations.stripe`` uses, over HTTP, to the real
  stripe-python client: ``POST /v1/checkout/sessions`` (bracket-notation form bodies, Bearer auth,
  ``Idempotency-Key`` replay and ``idempotency_error``), ``GET /v1/checkout/sessions/<id>``,
  ``GET /v1/payment_intents/<id>`` (with ``expand[]``), ``GET /v1/charges/<id>``;
- hosts a Checkout page (``/checkout/<session id>``) where a demo visitor "pays" by card (settles
  at once) or by SEPA debit (settles later: ``payment_status=unpaid`` first);
- sends webhook events (``checkout.session.*``, ``charge.refunded`` with a cumulative
  ``amount_refunded``, ``charge.dispute.*``) to the app's ``/webhooks/stripe``, signed with the
  real scheme (``Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``);
- lets tests hold events and deliver them duplicated, reordered, concurrently, late, tampered,
  or signed with another secret or timestamp, and make the API fail (``fail_next``).

Card fees follow Stripe's European pricing (1.5 % + 0.25 for two-decimal currencies); disputes
cost 15.00. Nothing here is imported by the app unless no Stripe key is configured.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_VERSION = "2026-10-28.endive"
DISPUTE_FEE_MINOR = 1500
_ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf",
                 "xof", "xpf"}


def card_fee_minor(amount_minor: int, currency: str) -> int:
    """1.5 % (rounded half up) plus a fixed 0.25 in two-decimal currencies."""
    fixed = 0 if currency.lower() in _ZERO_DECIMAL else 25
    return (amount_minor * 15 + 500) // 1000 + fixed


def sign(payload: str, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header for ``payload`` (the exact text that is sent)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.{payload}".encode("utf-8"), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def nest_form(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=x`` form keys (stripe-python's encoding) into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in items:
        head, _, rest = key.partition("[")
        path = [head] + ([p for p in rest.rstrip("]").split("][")] if rest else [])
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per API call is noise
        pass


class FakeStripeError(Exception):
    def __init__(self, status: int, error_type: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.param = status, error_type, param


class FakeStripe:
    """The fake server. ``start()`` binds a free port on ``host``; ``url`` is its base address.

    ``auto_deliver=True`` (the demo) posts each event to ``webhook_url`` shortly after it happens;
    otherwise events wait in ``held`` until a test calls ``deliver``.
    """

    def __init__(self, *, api_key: str = "sk_test_fundcircle_fake", webhook_secret: str | None = None,
                 webhook_url: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 auto_deliver: bool = False, deliver_delay_s: float = 0.3) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret or f"whsec_{secrets.token_hex(16)}"
        self.webhook_url = webhook_url
        self.auto_deliver = auto_deliver
        self.deliver_delay_s = deliver_delay_s
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self.objects: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.requests_log: list[tuple[str, str, str | None]] = []  # (method, path, idempotency key)
        self._idempotency: dict[str, tuple[str, int, str]] = {}
        self._failures: list[int] = []
        #: the time objects and events are stamped with (the demo seeds a history with it)
        self.clock: Callable[[], float] = time.time
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._url_map = Map([
            Rule("/v1/checkout/sessions", endpoint="create_session", methods=["POST"]),
            Rule("/v1/checkout/sessions/<sid>", endpoint="get_session", methods=["GET"]),
            Rule("/v1/payment_intents/<oid>", endpoint="get_object", methods=["GET"]),
            Rule("/v1/charges/<oid>", endpoint="get_object", methods=["GET"]),
            Rule("/checkout/<sid>", endpoint="checkout_page", methods=["GET", "POST"]),
        ])

    # -- server ------------------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        self._server = make_server(self._host, self._port, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-stripe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self._port}"

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """The next ``count`` API requests are answered with ``status`` (an api_error)."""
        with self._lock:
            self._failures.extend([status] * count)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        adapter = self._url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
            response = getattr(self, f"_http_{endpoint}")(request, **args)
        except FakeStripeError as exc:
            body = {"error": {"type": exc.error_type, "message": str(exc), **({"param": exc.param} if exc.param else {})}}
            response = Response(json.dumps(body), status=exc.status, mimetype="application/json")
        except Exception as exc:  # werkzeug HTTP exceptions (404, 405) are responses
            if hasattr(exc, "get_response"):
                response = exc.get_response(environ)
            else:  # pragma: no cover - a bug in the fake
                response = Response(json.dumps({"error": {"type": "api_error", "message": repr(exc)}}), status=500,
                                    mimetype="application/json")
        response.headers["Request-Id"] = f"req_{secrets.token_hex(8)}"
        return response(environ, start_response)

    def _api_checks(self, request: Request) -> None:
        with self._lock:
            self.requests_log.append((request.method, request.path, request.headers.get("Idempotency-Key")))
            if self._failures:
                status = self._failures.pop(0)
                raise FakeStripeError(status, "api_error", "The fake was told to fail this request.")
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            raise FakeStripeError(401, "invalid_request_error", "Invalid API Key provided.")

    @staticmethod
    def _json(obj: Any, status: int = 200) -> Response:
        return Response(json.dumps(obj), status=status, mimetype="application/json")

    # -- API endpoints -----------------------------------------------------------------------------

    def _http_create_session(self, request: Request) -> Response:
        # Like Stripe, the first result of a keyed request is stored and replayed — a 500 included,
        # so retrying a failed create with the same key fails again; validation errors (4xx) are not stored.
        params = nest_form(request.form.items(multi=True))
        key = request.headers.get("Idempotency-Key")
        canonical = json.dumps(params, sort_keys=True)
        with self._lock:
            if key and key in self._idempotency:
                self.requests_log.append((request.method, request.path, key))
                stored_params, status, body = self._idempotency[key]
                if stored_params != canonical:
                    raise FakeStripeError(400, "idempotency_error",
                                          "Keys for idempotent requests can only be used with the same parameters "
                                          "they were first used with.")
                return Response(body, status=status, mimetype="application/json",
                                headers={"Idempotent-Replayed": "true"})
            try:
                self._api_checks(request)
            except FakeStripeError as exc:
                if key and exc.status >= 500:
                    error = {"error": {"type": exc.error_type, "message": str(exc)}}
                    self._idempotency[key] = (canonical, exc.status, json.dumps(error))
                raise
            session = self._new_session(params)
            body = json.dumps(session)
            if key:
                self._idempotency[key] = (canonical, 200, body)
        return Response(body, status=200, mimetype="application/json")

    def _new_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") != "payment":
            raise FakeStripeError(400, "invalid_request_error", "Only mode=payment is supported by the fake.", "mode")
        items = params.get("line_items")
        if not isinstance(items, list) or len(items) != 1:
            raise FakeStripeError(400, "invalid_request_error", "Exactly one line item is supported.", "line_items")
        price = items[0].get("price_data") or {}
        try:
            quantity = int(items[0].get("quantity", "1"))
            unit_amount = int(price["unit_amount"])
            currency = str(price["currency"])
            product = str(price["product_data"]["name"])
        except (KeyError, TypeError, ValueError):
            raise FakeStripeError(400, "invalid_request_error", "Invalid line_items[0][price_data].",
                                  "line_items[0][price_data]") from None
        if currency != currency.lower() or unit_amount < 1 or quantity < 1:
            raise FakeStripeError(400, "invalid_request_error", "Invalid amount or currency.", "line_items")
        for field in ("success_url", "cancel_url"):
            if not str(params.get(field, "")).startswith(("http://", "https://")):
                raise FakeStripeError(400, "invalid_request_error", f"Not a valid URL: {field}", field)
        sid = f"cs_test_{secrets.token_hex(12)}"
        now = int(self.clock())
        session = {
            "id": sid, "object": "checkout.session", "mode": "payment", "status": "open",
            "payment_status": "unpaid", "amount_subtotal": unit_amount * quantity,
            "amount_total": unit_amount * quantity, "currency": currency,
            "client_reference_id": params.get("client_reference_id"), "metadata": params.get("metadata") or {},
            "payment_intent": None, "success_url": params["success_url"], "cancel_url": params["cancel_url"],
            "submit_type": params.get("submit_type", "auto"), "ui_mode": "hosted_page", "livemode": False,
            "url": f"{self.url}/checkout/{sid}", "created": now, "expires_at": now + 24 * 3600,
            "customer_details": None,
            "_product": product,
            "_pi_data": params.get("payment_intent_data") or {},
        }
        self.objects[sid] = session
        return self._public(session)

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}

    def _http_get_session(self, request: Request, sid: str) -> Response:
        self._api_checks(request)
        return self._json(self._expanded(sid, request.args.getlist("expand[]") + _indexed(request.args, "expand")))

    def _http_get_object(self, request: Request, oid: str) -> Response:
        self._api_checks(request)
        return self._json(self._expanded(oid, request.args.getlist("expand[]") + _indexed(request.args, "expand")))

    def _expanded(self, oid: str, expand: list[str]) -> dict[str, Any]:
        with self._lock:
            obj = self.objects.get(oid)
            if obj is None:
                raise FakeStripeError(404, "invalid_request_error", f"No such object: '{oid}'", "id")
            out = self._public(obj)
            for path in expand:
                node = out
                parts = path.split(".")
                for i, part in enumerate(parts):
                    ref = node.get(part) if isinstance(node, dict) else None
                    if isinstance(ref, str) and ref in self.objects:
                        node[part] = self._public(self.objects[ref])
                    node = node.get(part) if isinstance(node, dict) else None
                    if node is None:
                        break
            return out

    # -- the hosted Checkout page ------------------------------------------------------------------

    def _http_checkout_page(self, request: Request, sid: str) -> Response:
        with self._lock:
            session = self.objects.get(sid)
        if session is None or session.get("object") != "checkout.session":
            return Response("<h1>No such checkout</h1>", status=404, mimetype="text/html")
        if request.method == "POST":
            action = request.form.get("action", "")
            if action == "cancel":
                return Response(status=303, headers={"Location": session["cancel_url"]})
            if session["status"] != "open":
                return Response("<h1>This checkout is no longer open</h1>", status=409, mimetype="text/html")
            self.pay(sid, method="sepa_debit" if action == "sepa" else "card")
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", sid)
            return Response(status=303, headers={"Location": target})
        amount = session["amount_total"]
        cur = session["currency"].upper()
        shown = f"{amount} {cur}" if session["currency"] in _ZERO_DECIMAL else f"{amount / 100:.2f} {cur}"
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Stripe Checkout</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1rem;margin:.3rem 0;display:block;width:100%}}</style></head><body>
<main><p><strong>Test mode</strong> — this is fundcircle's local fake of Stripe Checkout. No money moves.</p>
<h1>{html.escape(session['_product'])}</h1><p>Amount: <strong>{html.escape(shown)}</strong></p>
<form method="post"><fieldset><legend>Pay with</legend>
<button type="submit" name="action" value="card">Pay by card (test card 4242…, settles at once)</button>
<button type="submit" name="action" value="sepa">Pay by SEPA debit (settles a little later)</button>
</fieldset><button type="submit" name="action" value="cancel">Cancel and go back</button></form></main></body></html>"""
        return Response(page, mimetype="text/html")

    # -- simulated money movements (each returns the events it made) -------------------------------

    def pay(self, session_id: str, *, method: str = "card") -> list[dict[str, Any]]:
        """The visitor paid: card settles now (``completed`` paid); SEPA debit completes unpaid."""
        with self._lock:
            session = self.objects[session_id]
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}")
            now = int(self.clock())
            pi_id = f"pi_{secrets.token_hex(12)}"
            pi_data = session["_pi_data"]
            self.objects[pi_id] = {
                "id": pi_id, "object": "payment_intent", "amount": session["amount_total"], "amount_received": 0,
                "currency": session["currency"], "status": "processing", "metadata": pi_data.get("metadata") or {},
                "description": pi_data.get("description"), "latest_charge": None, "created": now, "livemode": False,
                "payment_method_types": [method],
            }
            session.update(status="complete", payment_intent=pi_id)
            if method == "card":
                self._succeed(pi_id, now)
                session["payment_status"] = "paid"
            return [self._emit("checkout.session.completed", session)]

    def _succeed(self, pi_id: str, now: int) -> None:
        pi = self.objects[pi_id]
        ch_id, txn_id = f"ch_{secrets.token_hex(12)}", f"txn_{secrets.token_hex(12)}"
        fee = card_fee_minor(pi["amount"], pi["currency"])
        self.objects[txn_id] = {"id": txn_id, "object": "balance_transaction", "amount": pi["amount"], "fee": fee,
                                "net": pi["amount"] - fee, "currency": pi["currency"], "exchange_rate": None,
                                "reporting_category": "charge", "source": ch_id, "created": now, "type": "charge"}
        self.objects[ch_id] = {"id": ch_id, "object": "charge", "amount": pi["amount"], "amount_captured": pi["amount"],
                               "amount_refunded": 0, "refunded": False, "currency": pi["currency"],
                               "payment_intent": pi_id, "balance_transaction": txn_id, "created": now, "paid": True,
                               "status": "succeeded", "disputed": False, "metadata": copy.deepcopy(pi["metadata"])}
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=ch_id)

    def session_of(self, pi_id: str) -> dict[str, Any]:
        return next(o for o in self.objects.values() if o.get("object") == "checkout.session"
                    and o.get("payment_intent") == pi_id)

    def settle(self, pi_id: str, *, succeed: bool = True) -> list[dict[str, Any]]:
        """A delayed (SEPA) payment settles or fails: ``checkout.session.async_payment_*``."""
        with self._lock:
            pi = self.objects[pi_id]
            session = self.session_of(pi_id)
            if succeed:
                self._succeed(pi_id, int(self.clock()))
                session["payment_status"] = "paid"
                return [self._emit("checkout.session.async_payment_succeeded", session)]
            pi["status"] = "requires_payment_method"
            return [self._emit("checkout.session.async_payment_failed", session)]

    def expire(self, session_id: str) -> list[dict[str, Any]]:
        with self._lock:
            session = self.objects[session_id]
            session["status"] = "expired"
            return [self._emit("checkout.session.expired", session)]

    def charge_of(self, pi_id: str) -> str:
        return str(self.objects[pi_id]["latest_charge"])

    def refund(self, charge_id: str, amount_minor: int | None = None) -> list[dict[str, Any]]:
        """Refund part (or the rest) of a charge; the event carries the cumulative ``amount_refunded``."""
        with self._lock:
            charge = self.objects[charge_id]
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount_minor is None else amount_minor
            if not 0 < amount <= left:
                raise ValueError(f"cannot refund {amount} of {left}")
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            return [self._emit("charge.refunded", charge)]

    def dispute(self, charge_id: str) -> list[dict[str, Any]]:
        """A chargeback on the whole charge: funds plus the dispute fee are withdrawn."""
        with self._lock:
            charge = self.objects[charge_id]
            dp_id, now = f"dp_{secrets.token_hex(12)}", int(self.clock())
            withdrawal = {"id": f"txn_{secrets.token_hex(12)}", "object": "balance_transaction",
                          "amount": -charge["amount"], "fee": DISPUTE_FEE_MINOR,
                          "net": -charge["amount"] - DISPUTE_FEE_MINOR, "currency": charge["currency"],
                          "reporting_category": "dispute", "created": now}
            self.objects[dp_id] = {"id": dp_id, "object": "dispute", "amount": charge["amount"],
                                   "currency": charge["currency"], "charge": charge_id,
                                   "payment_intent": charge["payment_intent"], "status": "needs_response",
                                   "reason": "fraudulent", "created": now, "balance_transactions": [withdrawal],
                                   "livemode": False}
            charge["disputed"] = True
            return [self._emit("charge.dispute.created", self.objects[dp_id])]

    def close_dispute(self, dispute_id: str, *, won: bool) -> list[dict[str, Any]]:
        """Won: ``charge.dispute.closed`` (status won) and ``charge.dispute.funds_reinstated``."""
        with self._lock:
            dispute = self.objects[dispute_id]
            dispute["status"] = "won" if won else "lost"
            events = []
            if won:
                now = int(self.clock())
                dispute["balance_transactions"].append({
                    "id": f"txn_{secrets.token_hex(12)}", "object": "balance_transaction", "amount": dispute["amount"],
                    "fee": 0, "net": dispute["amount"], "currency": dispute["currency"],
                    "reporting_category": "dispute_reversal", "created": now})
                events.append(self._emit("charge.dispute.funds_reinstated", dispute))
            events.insert(0, self._emit("charge.dispute.closed", dispute))
            return events

    # -- events and delivery -----------------------------------------------------------------------

    def make_event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        """An event envelope around a snapshot of ``obj`` (not recorded, not delivered)."""
        return {"id": f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
                "created": int(self.clock()), "data": {"object": self._public(obj)}, "livemode": False,
                "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type}

    def _emit(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = self.make_event(event_type, obj)
        self.events.append(event)
        if self.auto_deliver and self.webhook_url:
            timer = threading.Timer(self.deliver_delay_s, self._deliver_with_retries, args=(event,))
            timer.daemon = True
            timer.start()
        else:
            self.held.append(event)
        return event

    def _deliver_with_retries(self, event: dict[str, Any], attempts: int = 5) -> None:
        # live Stripe retries non-2xx deliveries with backoff; the demo does a few quick retries
        for attempt in range(attempts):
            try:
                if 200 <= self.deliver(event)[0] < 300:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5 * 2**attempt)

    def deliver(self, event: dict[str, Any], *, copies: int = 1, concurrency: int = 1, timestamp: int | None = None,
                secret: str | None = None, tamper: bool = False, url: str | None = None,
                delay_s: float = 0.0) -> list[int]:
        """POST ``event`` to the webhook ``copies`` times (``concurrency`` at once); returns the statuses.

        ``timestamp``/``secret`` override the signature's; ``tamper`` changes the body after signing;
        ``delay_s`` waits before sending (a late delivery).
        """
        if delay_s:
            time.sleep(delay_s)
        payload = json.dumps(event, separators=(",", ":"))
        header = sign(payload, secret or self.webhook_secret, int(time.time()) if timestamp is None else timestamp)
        body = payload.encode("utf-8")
        if tamper:
            body = body.replace(b'"livemode":false', b'"livemode":true ', 1) if b'"livemode":false' in body \
                else body + b" "
        target = url or self.webhook_url
        if not target:
            raise ValueError("no webhook URL")

        def one(_: int) -> int:
            return requests.post(target, data=body, timeout=30, headers={
                "Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}).status_code

        if concurrency <= 1:
            return [one(i) for i in range(copies)]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, range(copies)))

    def in_process_gateway(self) -> FakeGateway:
        """The same answers as the HTTP API without a server (the demo seeder runs offline)."""
        return FakeGateway(self)

    def deliver_held(self, **kwargs: Any) -> list[int]:
        """Deliver every held event once, in order, and forget them."""
        with self._lock:
            events, self.held = self.held, []
        return [status for event in events for status in self.deliver(event, **kwargs)]


class FakeGateway:
    """``PaymentGateway`` answered from a ``FakeStripe``'s state in process (no HTTP)."""

    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake

    def create_checkout_session(self, *, idempotency_key: str, amount_minor: int, currency: str, product_name: str,
                                client_reference_id: str, metadata: Any, success_url: str, cancel_url: str,
                                description: str = "") -> Any:
        from fundcircle.integrations.stripe import CheckoutSession

        with self.fake._lock:
            session = self.fake._new_session({
                "mode": "payment", "client_reference_id": client_reference_id, "success_url": success_url,
                "cancel_url": cancel_url, "metadata": dict(metadata),
                "line_items": [{"quantity": "1", "price_data": {"currency": currency.lower(), "unit_amount": str(amount_minor),
                                                                "product_data": {"name": product_name}}}],
                "payment_intent_data": {"metadata": dict(metadata), "description": description}})
        return CheckoutSession(id=session["id"], url=session["url"], status=session["status"],
                               payment_status=session["payment_status"], amount_total=session["amount_total"],
                               currency=session["currency"].upper())

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        return self.fake._expanded(payment_intent_id, ["latest_charge.balance_transaction"])

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return self.fake._expanded(session_id, [])


def _indexed(args: Any, name: str) -> list[str]:
    """``expand[0]=a&expand[1]=b`` (stripe-python's array encoding) as a list."""
    found = sorted(((k, v) for k, v in args.items(multi=True) if k.startswith(f"{name}[") and k[len(name) + 1:-1].isdigit()),
                   key=lambda kv: int(kv[0][len(name) + 1:-1]))
    return [v for _k, v in found]


def start_for_app(app: Any, *, app_host: str, app_port: int) -> FakeStripe | None:
    """Start the fake for ``fundcircle up`` when no Stripe key is configured (never in production),
    and point the app's configuration at it. Returns None when the real Stripe is configured.

    The fake listens on the app's host (so a browser that reaches the app reaches the Checkout
    page too) on a free port, or on ``FUNDCIRCLE_FAKE_STRIPE_PORT``; it delivers webhooks to the
    app over loopback.
    """
    import os

    if app.config.get("STRIPE_SECRET_KEY") or app.config.get("ENVIRONMENT") == "production":
        return None
    loopback = "127.0.0.1" if app_host in ("0.0.0.0", "", "localhost") else app_host
    port = int(os.environ.get("FUNDCIRCLE_FAKE_STRIPE_PORT", "0"))
    fake = FakeStripe(webhook_url=f"http://{loopback}:{app_port}/webhooks/stripe", host=app_host, port=port,
                      auto_deliver=True).start()
    app.config.update(STRIPE_SECRET_KEY=fake.api_key, STRIPE_API_BASE=fake.url,
                      STRIPE_WEBHOOK_SECRET=fake.webhook_secret)
    return fake


__all__ = ["FakeStripe", "card_fee_minor", "nest_form", "sign", "start_for_app"]
