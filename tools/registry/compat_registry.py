"""A small in-memory schema registry serving the subset of Confluent's REST API that sluice and
its tests use. A stand-in: Apicurio Registry (the intended real registry) cannot be fetched from
Maven Central (its app's dependencies are not published there; see docs/decisions.md).

  POST /subjects/{subject}/versions   {"schema": "...", "schemaType": "AVRO"} -> {"id": n}
  GET  /schemas/ids/{id}              -> {"schema": "...", "schemaType": "AVRO"}
  GET  /subjects                      -> ["subject", ...]
  GET  /subjects/{subject}/versions   -> [1, 2, ...]
  GET  /subjects/{subject}/versions/{n|latest} -> {"subject", "version", "id", "schema"}

Usage: compat_registry.py --host 127.0.0.1 --port 8081
"""
import argparse
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class Store:
    def __init__(self):
        self.lock = threading.Lock()  # guards every field below
        self.schemas = {}             # id -> (schema text, type)
        self.ids_by_text = {}         # (schema text, type) -> id: the same schema keeps its id
        self.subjects = {}            # subject -> [id of version 1, id of version 2, ...]

    def register(self, subject, text, schema_type):
        with self.lock:
            key = (text, schema_type)
            if key not in self.ids_by_text:
                new_id = len(self.schemas) + 1
                self.schemas[new_id] = key
                self.ids_by_text[key] = new_id
            schema_id = self.ids_by_text[key]
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id


class Handler(BaseHTTPRequestHandler):
    store = Store()

    def log_message(self, fmt, *args):  # one line per request in the log
        print("%s %s" % (self.address_string(), fmt % args), flush=True)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def not_found(self, code, message):
        self.reply(404, {"error_code": code, "message": message})

    def parts(self):
        path = urllib.parse.urlparse(self.path).path
        return [urllib.parse.unquote(p) for p in path.strip("/").split("/") if p]

    def do_GET(self):
        p = self.parts()
        s = self.store
        with s.lock:
            if len(p) == 3 and p[:2] == ["schemas", "ids"] and p[2].isdigit():
                entry = s.schemas.get(int(p[2]))
                if not entry:
                    return self.not_found(40403, "Schema %s not found" % p[2])
                return self.reply(200, {"schema": entry[0], "schemaType": entry[1]})
            if p == ["subjects"]:
                return self.reply(200, sorted(s.subjects))
            if len(p) >= 3 and p[0] == "subjects" and p[2] == "versions":
                versions = s.subjects.get(p[1])
                if versions is None:
                    return self.not_found(40401, "Subject '%s' not found." % p[1])
                if len(p) == 3:
                    return self.reply(200, list(range(1, len(versions) + 1)))
                if len(p) == 4:
                    if p[3] == "latest":
                        n = len(versions)
                    elif p[3].isdigit() and 1 <= int(p[3]) <= len(versions):
                        n = int(p[3])
                    else:
                        return self.not_found(40402, "Version %s not found." % p[3])
                    schema_id = versions[n - 1]
                    text, schema_type = s.schemas[schema_id]
                    return self.reply(200, {"subject": p[1], "version": n, "id": schema_id,
                                            "schema": text, "schemaType": schema_type})
        self.not_found(404, "no such resource: %s" % self.path)

    def do_POST(self):
        p = self.parts()
        if len(p) == 3 and p[0] == "subjects" and p[2] == "versions":
            length = int(self.headers.get("Content-Length", "0"))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                text = body["schema"]
                json.loads(text)  # an Avro schema is JSON
            except (ValueError, KeyError, TypeError) as e:
                return self.reply(422, {"error_code": 42201, "message": "Invalid schema: %s" % e})
            schema_id = self.store.register(p[1], text, body.get("schemaType", "AVRO"))
            return self.reply(200, {"id": schema_id})
        self.not_found(404, "no such resource: %s" % self.path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print("compat registry listening on http://%s:%d" % (args.host, args.port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
