#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR MIT
"""A fake Kubernetes API server for testing `kvipctl sync`.

It speaks the real wire format for the three resources kvipctl sync uses
(core/v1 services, discovery.k8s.io/v1 endpointslices, core/v1 nodes):

  * lists: `limit`/`continue` paging over a consistent snapshot, list
    metadata.resourceVersion, 410 Expired for a continue token that expired
    (with a new continue token in the Status, like the apiserver);
  * watches: `watch=1&resourceVersion=RV`, HTTP/1.1 chunked responses of
    newline-delimited `{"type": ..., "object": ...}` events, replay of the
    history after RV, label/field selector transitions (ADDED/DELETED when an
    object starts/stops matching), BOOKMARK events when allowWatchBookmarks,
    close after timeoutSeconds (capped by max_watch_seconds);
  * 410 both ways: HTTP 410 on the watch request, or 200 + an ERROR event
    whose object is a Status with code 410, when RV is older than the
    compacted history;
  * faults: abrupt disconnects (optionally mid-event), ERROR 410 events,
    failing the next requests, slow lists and events, raw (malformed) lines;
  * TLS with a CA generated at test time by openssl, bearer tokens (a set, so
    a test can rotate them) and client certificates.

Objects are dicts in the exact JSON shape the API returns (metadata, spec,
status; EndpointSlice with addressType, endpoints[].conditions, nodeName,
zone, hints.forZones, ports[]). Helpers service(), endpoint_slice() and
node() build them.

Use it in-process (FakeAPIServer(...).start(); .apply(); .delete(); faults
as methods) or as a program:

  fake_apiserver.py [--port N] [--tls DIR] [--token T] [--bookmark S]

which prints "READY <port>" and takes control requests (no auth) as POST
/fake/apply {"resource": R, "object": O}, /fake/delete {"resource": R,
"key": "ns/name"}, /fake/fault {"name": METHOD, "args": {...}}, and GET
/fake/requests.
"""

import base64
import bisect
import copy
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESOURCES = {
    "services": ("/api/v1/services", "ServiceList", "Service", "v1", True),
    "endpointslices": ("/apis/discovery.k8s.io/v1/endpointslices",
                       "EndpointSliceList", "EndpointSlice",
                       "discovery.k8s.io/v1", True),
    "nodes": ("/api/v1/nodes", "NodeList", "Node", "v1", False),
}
PATHS = {v[0]: k for k, v in RESOURCES.items()}


def status_obj(code, reason, message, cont=None):
    md = {}
    if cont:
        md["continue"] = cont
    return {"kind": "Status", "apiVersion": "v1", "metadata": md,
            "status": "Failure", "message": message, "reason": reason,
            "code": code}


def key_of(obj):
    md = obj.get("metadata", {})
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else md.get("name")


# ---------------------------------------------------------------- objects --

def service(ns, name, cluster_ips=("10.96.0.10",), ports=(("http", "TCP", 80),),
            type="ClusterIP", labels=None, external_ips=(), lb_ingress=(),
            etp=None, itp="Cluster", affinity=None, hc_port=None,
            source_ranges=None):
    """ports: (name, protocol, port[, nodePort]); lb_ingress: dicts."""
    cips = list(cluster_ips)
    spec = {
        "ports": [],
        "clusterIP": cips[0] if cips else "None",
        "clusterIPs": cips if cips else ["None"],
        "type": type,
        "sessionAffinity": "ClientIP" if affinity else "None",
        "ipFamilies": ["IPv6" if ":" in ip else "IPv4" for ip in cips],
        "ipFamilyPolicy": "PreferDualStack" if len(cips) > 1 else "SingleStack",
        "internalTrafficPolicy": itp,
        "selector": {"app": name},
    }
    for p in ports:
        port = {"protocol": p[1], "port": p[2], "targetPort": p[2] + 8000}
        if p[0] is not None:
            port["name"] = p[0]
        if len(p) > 3 and p[3]:
            port["nodePort"] = p[3]
        spec["ports"].append(port)
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    if type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = etp or "Cluster"
    if hc_port:
        spec["healthCheckNodePort"] = hc_port
    if affinity:
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity}}
    if source_ranges:
        spec["loadBalancerSourceRanges"] = list(source_ranges)
    st = {"loadBalancer": {}}
    if lb_ingress:
        st["loadBalancer"]["ingress"] = list(lb_ingress)
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = dict(labels)
    return {"kind": "Service", "apiVersion": "v1", "metadata": md,
            "spec": spec, "status": st}


def endpoint(addr, ready=True, serving=None, terminating=None, node=None,
             zone=None, hints=None, conditions=True):
    ep = {"addresses": [addr] if isinstance(addr, str) else list(addr)}
    if conditions:
        c = {"ready": ready}
        c["serving"] = ready if serving is None else serving
        c["terminating"] = bool(terminating)
        ep["conditions"] = c
    else:
        ep["conditions"] = {}
    if node:
        ep["nodeName"] = node
    if zone:
        ep["zone"] = zone
    if hints is not None:
        ep["hints"] = {"forZones": [{"name": z} for z in hints]}
    ep["targetRef"] = {"kind": "Pod", "namespace": "default",
                       "name": "pod-" + ep["addresses"][0].replace(":", "-")}
    return ep


def endpoint_slice(ns, name, svc, endpoints, ports=(("http", "TCP", 8080),),
                   address_type="IPv4", labels=None):
    lab = {"kubernetes.io/service-name": svc,
           "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    if svc is None:
        del lab["kubernetes.io/service-name"]
    if labels:
        lab.update(labels)
    pl = []
    for p in ports:
        d = {"protocol": p[1], "port": p[2]}
        if p[0] is not None:
            d["name"] = p[0]
        pl.append(d)
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "labels": lab,
                         "generateName": (svc or "x") + "-"},
            "addressType": address_type, "endpoints": list(endpoints),
            "ports": pl}


def node(name, zone=None):
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": name, "labels": labels},
            "spec": {}, "status": {"addresses": []}}


# ------------------------------------------------------------- selectors --

def parse_label_selector(s):
    reqs = []
    for part in filter(None, (p.strip() for p in (s or "").split(","))):
        if part.startswith("!"):
            reqs.append(("!", part[1:], None))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(("!=", k, v))
        elif "==" in part:
            k, v = part.split("==", 1)
            reqs.append(("=", k, v))
        elif "=" in part:
            k, v = part.split("=", 1)
            reqs.append(("=", k, v))
        else:
            reqs.append(("exists", part, None))
    return reqs


def label_match(reqs, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for op, k, v in reqs:
        if op == "!" and k in labels:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
    return True


def field_match(s, obj):
    md = obj.get("metadata") or {}
    for part in filter(None, (s or "").split(",")):
        k, _, v = part.partition("=")
        if k == "metadata.name" and md.get("name") != v:
            return False
        if k == "metadata.namespace" and md.get("namespace") != v:
            return False
    return True


# ---------------------------------------------------------------- server --

class FakeAPIServer:
    def __init__(self, host="127.0.0.1", port=0, tls_dir=None, tokens=None,
                 client_ca=False, bookmark_interval=1.0):
        self.host = host
        self.lock = threading.Condition()
        self.rv = 1000
        self.objects = {r: {} for r in RESOURCES}
        self.history = []          # (rv, resource, type, obj, old)
        self.history_rvs = []
        self.hist_offset = 0       # absolute index of history[0]
        self.floor_rv = 0          # watches from below: 410
        self.snapshots = {}
        self.snap_id = 0
        self.tokens = set(tokens or [])
        self.requests = []
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = 3600
        self.gone_mode = "event"   # how a too-old watch is refused: http|event
        # faults
        self.disconnect_gen = 0
        self.partial_on_disconnect = False
        self.error410_gen = 0
        self.fail_next_watch = []  # "http" | "event"
        self.fail_next = []        # HTTP status codes for the next requests
        self.list_delay = 0.0
        self.event_delay = 0.0
        self.raw_lines = {r: [] for r in RESOURCES}
        self.raw_gen = 0
        self.active_watches = 0
        self.ctx = None
        if tls_dir:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(os.path.join(tls_dir, "server.crt"),
                                     os.path.join(tls_dir, "server.key"))
            self.ctx.set_alpn_protocols(["http/1.1"])
            if client_ca:
                self.ctx.load_verify_locations(os.path.join(tls_dir, "ca.crt"))
                self.ctx.verify_mode = ssl.CERT_OPTIONAL
        handler = type("Handler", (_Handler,), {"api": self})
        self.httpd = _Server((host, port), handler)
        self.httpd.daemon_threads = True
        if self.ctx:
            self.httpd.socket = self.ctx.wrap_socket(self.httpd.socket,
                                                     server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = None

    @property
    def url(self):
        return f"{'https' if self.ctx else 'http'}://{self.host}:{self.port}"

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            self.disconnect_gen += 1
            self.lock.notify_all()

    # ------------------------------------------------------ mutations --

    def _record(self, res, typ, obj, old):
        self.history.append((self.rv, res, typ, obj, old))
        self.history_rvs.append(self.rv)
        self.lock.notify_all()

    def apply(self, res, obj):
        """Create or update an object; returns its resourceVersion."""
        obj = copy.deepcopy(obj)
        with self.lock:
            key = key_of(obj)
            old = self.objects[res].get(key)
            self.rv += 1
            md = obj.setdefault("metadata", {})
            md["resourceVersion"] = str(self.rv)
            md.setdefault("uid", old["metadata"]["uid"] if old else
                          "%08x-0000-4000-8000-%012x" % (self.rv, self.rv))
            md.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            self.objects[res][key] = obj
            self._record(res, "MODIFIED" if old else "ADDED", obj, old)
            return str(self.rv)

    def delete(self, res, key):
        with self.lock:
            old = self.objects[res].pop(key, None)
            if old is None:
                return None
            self.rv += 1
            obj = copy.deepcopy(old)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._record(res, "DELETED", obj, old)
            return str(self.rv)

    def bulk(self, res, objs):
        for o in objs:
            self.apply(res, o)

    # --------------------------------------------------------- faults --

    def compact(self):
        """Forget the history: watches from an older RV get 410."""
        with self.lock:
            self.hist_offset += len(self.history)
            self.history = []
            self.history_rvs = []
            self.floor_rv = self.rv
            self.lock.notify_all()

    def disconnect_watches(self, partial=False):
        """Cut every watch stream (no final chunk); partial: mid-event."""
        with self.lock:
            self.partial_on_disconnect = partial
            self.disconnect_gen += 1
            self.lock.notify_all()

    def send_error_410(self):
        """An ERROR event with a 410 Status on every open watch."""
        with self.lock:
            self.error410_gen += 1
            self.lock.notify_all()

    def inject_raw(self, res, line):
        """A raw line (e.g. malformed JSON) on the open watches of res."""
        with self.lock:
            self.raw_lines[res].append(line)
            self.raw_gen += 1
            self.lock.notify_all()

    def expire_continue(self):
        with self.lock:
            self.snapshots.clear()

    def wait_watches(self, n, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if self.active_watches >= n:
                    return True
            time.sleep(0.02)
        return False

    def requests_matching(self, path_prefix="", watch=None):
        with self.lock:
            out = []
            for r in self.requests:
                if not r["path"].startswith(path_prefix):
                    continue
                if watch is not None and ("watch" in r["query"]) != watch:
                    continue
                out.append(r)
            return out


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # Clients that go away (sync stopped, TLS refused) are expected.
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError,
                                               OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api = None  # set per server

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_APISERVER_LOG"):
            sys.stderr.write("fake-apiserver: " + fmt % args + "\n")

    # ------------------------------------------------------- plumbing --

    def _send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _authorized(self):
        api = self.api
        if not api.tokens:
            return True
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in api.tokens:
            return True
        if api.ctx and isinstance(self.connection, ssl.SSLSocket):
            try:
                if self.connection.getpeercert():
                    return True
            except (ValueError, OSError):
                pass
        return False

    # ------------------------------------------------------- requests --

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        if not u.path.startswith("/fake/"):
            return self._send_json(405, status_obj(405, "MethodNotAllowed",
                                                   "read only"))
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        api = self.api
        op = u.path[len("/fake/"):]
        res = None
        if op == "apply":
            res = api.apply(body["resource"], body["object"])
        elif op == "delete":
            res = api.delete(body["resource"], body["key"])
        elif op == "fault":
            res = getattr(api, body["name"])(**body.get("args", {}))
        elif op == "set":
            for k, v in body.items():
                setattr(api, k, v)
        else:
            return self._send_json(404, status_obj(404, "NotFound", op))
        self._send_json(200, {"result": res, "rv": str(api.rv),
                              "time": time.time()})

    def do_GET(self):
        api = self.api
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        if u.path == "/fake/requests":
            with api.lock:
                return self._send_json(200, api.requests)
        if u.path == "/fake/objects":
            with api.lock:
                return self._send_json(200, api.objects)
        with api.lock:
            api.requests.append({"path": u.path, "query": q,
                                 "auth": self.headers.get("Authorization", ""),
                                 "time": time.time()})
            fail = api.fail_next.pop(0) if api.fail_next else None
        if not self._authorized():
            return self._send_json(401, status_obj(401, "Unauthorized",
                                                   "Unauthorized"))
        if fail:
            return self._send_json(fail, status_obj(
                fail, "InternalError", "injected failure %d" % fail))
        res = PATHS.get(u.path)
        if not res:
            return self._send_json(404, status_obj(
                404, "NotFound", "the server could not find the requested "
                "resource"))
        if q.get("watch") in ("1", "true"):
            return self._watch(res, q)
        return self._list(res, q)

    def _list(self, res, q):
        api = self.api
        path, list_kind, _, apiver, _ = RESOURCES[res]
        if api.list_delay:
            time.sleep(api.list_delay)
        lsel = parse_label_selector(q.get("labelSelector"))
        fsel = q.get("fieldSelector")
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        with api.lock:
            if cont:
                if "resourceVersion" in q and q["resourceVersion"] not in ("", "0"):
                    return self._send_json(400, status_obj(
                        400, "BadRequest", "specifying resource version is "
                        "not allowed when using continue"))
                try:
                    tok = json.loads(base64.b64decode(cont))
                    snap = api.snapshots[tok["id"]]
                    off = tok["off"]
                except (ValueError, KeyError):
                    return self._send_json(410, status_obj(
                        410, "Expired", "The provided continue parameter is "
                        "too old to display a consistent list result. You "
                        "can start a new list without the continue "
                        "parameter, or use the continue token in this "
                        "response to retrieve the remainder of the results. "
                        "Continuing with the provided token results in an "
                        "inconsistent list - objects that were created, "
                        "modified, or deleted between the time the first "
                        "chunk was returned and now may show up in the list.",
                        cont=base64.b64encode(b'{"inconsistent":1}').decode()))
                items, rv = snap
            else:
                items = [copy.deepcopy(o) for k, o in
                         sorted(api.objects[res].items())
                         if label_match(lsel, o) and field_match(fsel, o)]
                for o in items:
                    o.pop("kind", None)
                    o.pop("apiVersion", None)
                rv = str(api.rv)
                off = 0
                api.snap_id += 1
                api.snapshots[api.snap_id] = (items, rv)
                tok = {"id": api.snap_id}
            page = items[off:off + limit] if limit else items[off:]
            md = {"resourceVersion": rv}
            nxt = off + len(page)
            if limit and nxt < len(items):
                md["continue"] = base64.b64encode(json.dumps(
                    {"id": tok["id"], "off": nxt}).encode()).decode()
                md["remainingItemCount"] = len(items) - nxt
        self._send_json(200, {"kind": list_kind, "apiVersion": apiver,
                              "metadata": md, "items": page})

    def _watch(self, res, q):
        api = self.api
        lsel = parse_label_selector(q.get("labelSelector"))
        fsel = q.get("fieldSelector")
        timeout = min(float(q.get("timeoutSeconds") or 1800),
                      api.max_watch_seconds)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        try:
            since = int(q.get("resourceVersion") or 0)
        except ValueError:
            return self._send_json(400, status_obj(400, "BadRequest",
                                                   "bad resourceVersion"))
        _, _, kind, apiver, _ = RESOURCES[res]
        with api.lock:
            forced = api.fail_next_watch.pop(0) if api.fail_next_watch else None
            too_old = forced or (since and since < api.floor_rv)
            mode = forced or api.gone_mode
            cur_rv = api.rv
            # Where the stream starts, taken with the RV check: a
            # compaction while the headers go out then shows as
            # pos < hist_offset below (410), not as skipped events.
            if since:
                pos = bisect.bisect_right(api.history_rvs, since) + \
                    api.hist_offset
            else:
                pos = len(api.history) + api.hist_offset
        if too_old and mode == "http":
            return self._send_json(410, status_obj(
                410, "Expired", "too old resource version: %d (%d)" %
                (since, cur_rv)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        if too_old:
            self._event("ERROR", status_obj(
                410, "Expired", "too old resource version: %d (%d)" %
                (since, cur_rv)))
            self._chunk(b"")
            self.close_connection = True
            return
        with api.lock:
            api.active_watches += 1
            dgen, egen, rgen = (api.disconnect_gen, api.error410_gen,
                                api.raw_gen)
            raw_pos = len(api.raw_lines[res])
        deadline = time.time() + timeout
        next_bm = time.time() + api.bookmark_interval
        try:
            while True:
                with api.lock:
                    while True:
                        now = time.time()
                        new = pos < len(api.history) + api.hist_offset
                        if (new or api.disconnect_gen != dgen or
                                api.error410_gen != egen or
                                api.raw_gen != rgen or now >= deadline or
                                (bookmarks and now >= next_bm)):
                            break
                        api.lock.wait(min(deadline, next_bm if bookmarks
                                          else deadline) - now)
                    if pos < api.hist_offset:
                        events, gone = [], True
                    else:
                        events = api.history[pos - api.hist_offset:]
                        gone = False
                    pos = len(api.history) + api.hist_offset
                    disc = api.disconnect_gen != dgen
                    partial = api.partial_on_disconnect
                    e410 = api.error410_gen != egen
                    raws = api.raw_lines[res][raw_pos:]
                    raw_pos = len(api.raw_lines[res])
                    rgen = api.raw_gen
                    cur_rv = api.rv
                if disc:
                    # Cut before anything pending: the client must resume.
                    if partial:
                        self.wfile.write(b"40\r\n{\"type\":\"MODIFIED\",\"obj")
                        self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                for line in raws:
                    self._chunk(line.encode() + b"\n")
                if gone:
                    self._event("ERROR", status_obj(
                        410, "Expired", "The resourceVersion for the "
                        "provided watch is too old."))
                    break
                for rv, r, typ, obj, old in events:
                    if r != res:
                        continue
                    t = self._transition(typ, obj, old, lsel, fsel)
                    if not t:
                        continue
                    if api.event_delay:
                        time.sleep(api.event_delay)
                    self._event(t, obj)
                if e410:
                    self._event("ERROR", status_obj(
                        410, "Expired", "too old resource version: %s (%d)" %
                        (q.get("resourceVersion"), cur_rv)))
                    break
                now = time.time()
                if bookmarks and now >= next_bm:
                    self._event("BOOKMARK", {
                        "kind": kind, "apiVersion": apiver,
                        "metadata": {"resourceVersion": str(cur_rv)}})
                    next_bm = now + api.bookmark_interval
                if now >= deadline:
                    break
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with api.lock:
                api.active_watches -= 1

    @staticmethod
    def _transition(typ, obj, old, lsel, fsel):
        def m(o):
            return o is not None and label_match(lsel, o) and field_match(fsel, o)
        if typ == "ADDED":
            return "ADDED" if m(obj) else None
        if typ == "DELETED":
            return "DELETED" if m(old) else None
        was, now = m(old), m(obj)
        if was and now:
            return "MODIFIED"
        if was:
            return "DELETED"
        if now:
            return "ADDED"
        return None

    def _event(self, typ, obj):
        self._chunk(json.dumps({"type": typ, "object": obj}).encode() + b"\n")


# ------------------------------------------------------------------ PKI --

def make_pki(d, hosts=("127.0.0.1", "::1", "localhost")):
    """CA, server cert (SANs hosts) and client cert, with openssl."""
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt",
        "-days", "2", "-subj", "/CN=fake-kubernetes-ca")
    sans = ",".join(("IP:" if h[0].isdigit() or ":" in h else "DNS:") + h
                    for h in hosts)
    for name, ext in (("server", f"subjectAltName={sans}\n"
                       "extendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
            "-subj", f"/CN=fake-{name}" + ("/O=system:nodes" if name == "client" else ""))
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(ext)
        run("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.crt",
            "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2",
            "-out", f"{d}/{name}.crt", "-extfile", f"{d}/{name}.ext")
    return d


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", metavar="DIR",
                    help="serve TLS with DIR/server.{crt,key} (made with "
                    "a CA in DIR if missing)")
    ap.add_argument("--token", action="append", default=[])
    ap.add_argument("--bookmark", type=float, default=1.0)
    a = ap.parse_args()
    if a.tls and not os.path.exists(os.path.join(a.tls, "server.crt")):
        make_pki(a.tls)
    srv = FakeAPIServer(a.host, a.port, a.tls, a.token,
                        bookmark_interval=a.bookmark)
    print("READY", srv.port, flush=True)
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
