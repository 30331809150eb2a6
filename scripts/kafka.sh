#!/usr/bin/env bash
# Starts, stops and checks a single-node Apache Kafka (KRaft, combined broker+controller) on
# 127.0.0.1, from the jars scripts/setup.sh fetched. State lives in .run/kafka-<port>/.
#   scripts/kafka.sh start [--fresh]   start (and wait until ready); --fresh wipes old data
#   scripts/kafka.sh stop              stop what `start` started, by pid
#   scripts/kafka.sh status            exit 0 if running and ready
# Environment: KAFKA_PORT (default 9092), KAFKA_CONTROLLER_PORT (default KAFKA_PORT+1),
#              KAFKA_HEAP (default 512m), KAFKA_READY_TIMEOUT seconds (default 90),
#              KAFKA_SECURE=1: also listen with TLS on KAFKA_PORT+2, SASL/PLAIN on KAFKA_PORT+3,
#              SASL over TLS (PLAIN and SCRAM-SHA-512) on KAFKA_PORT+4 and mutual TLS (a client
#              certificate required) on KAFKA_PORT+5. The broker's certificate is signed by a
#              self-signed CA made at start: .run/kafka-<port>/tls/ca.crt; so is a client
#              certificate, client.crt, whose key client.key is encrypted with the password in
#              client.key.pass. SASL users: sluice / sluice-secret (PLAIN and SCRAM-SHA-512)
#              and admin / admin-secret (PLAIN).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${KAFKA_PORT:-9092}
CPORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
HEAP=${KAFKA_HEAP:-512m}
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}
RUN="$ROOT/.run/kafka-$PORT"
LIBS="$ROOT/.deps/kafka/jars"
PIDFILE="$RUN/kafka.pid"
SECURE=${KAFKA_SECURE:-0}
SSL_PORT=$((PORT + 2))
SASL_PORT=$((PORT + 3))
SASL_SSL_PORT=$((PORT + 4))
MTLS_PORT=$((PORT + 5))
TLS="$RUN/tls"
TLS_PASS=sluice-test-keystore
CLIENT_KEY_PASS=sluice-test-client-key

log() { printf '[kafka] %s\n' "$*" >&2; }

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

is_ready() {
  is_running && grep -q "Kafka Server started" "$RUN/logs/server.log" 2>/dev/null \
    && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

# A CA of its own and a broker certificate it signs (for 127.0.0.1 and localhost), as PKCS12.
make_tls() {
  mkdir -p "$TLS"
  : > "$TLS/openssl.log"
  # openssl's chatter goes to a log that is shown when a step fails.
  ossl() {
    openssl "$@" 2>>"$TLS/openssl.log" || {
      echo "[kafka] openssl $1 failed:" >&2; cat "$TLS/openssl.log" >&2; exit 1
    }
  }
  ossl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=sluice test CA" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.crt"
  ossl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$TLS/broker.key" -out "$TLS/broker.csr"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$TLS/san.ext"
  ossl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" \
    -CAcreateserial -days 30 -extfile "$TLS/san.ext" -out "$TLS/broker.crt"
  ossl pkcs12 -export -in "$TLS/broker.crt" -inkey "$TLS/broker.key" -name broker \
    -passout "pass:$TLS_PASS" -out "$TLS/broker.p12"
  # A client certificate for mutual TLS, its key encrypted (ssl.key.password).
  printf '%s\n' "$CLIENT_KEY_PASS" > "$TLS/client.key.pass"
  ossl req -newkey rsa:2048 -nodes -subj "/CN=sluice-client" \
    -keyout "$TLS/client.plain.key" -out "$TLS/client.csr"
  printf 'extendedKeyUsage=clientAuth\n' > "$TLS/client.ext"
  ossl x509 -req -in "$TLS/client.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" \
    -CAcreateserial -days 30 -extfile "$TLS/client.ext" -out "$TLS/client.crt"
  ossl pkey -in "$TLS/client.plain.key" -aes256 -passout "file:$TLS/client.key.pass" \
    -out "$TLS/client.key"
  rm -f "$TLS/client.plain.key"
  chmod 600 "$TLS"/*.key "$TLS/client.key.pass"
}

write_config() {
  mkdir -p "$RUN/data" "$RUN/logs"
  local listeners="PLAINTEXT://127.0.0.1:$PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ "$SECURE" = 1 ]; then
    listeners="$listeners,SSL://127.0.0.1:$SSL_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
    listeners="$listeners,SASL_SSL://127.0.0.1:$SASL_SSL_PORT,MTLS://127.0.0.1:$MTLS_PORT"
    protocols="$protocols,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL"
  fi
  cat > "$RUN/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=$listeners,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$RUN/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=104857600
CONF
  if [ "$SECURE" = 1 ]; then
    [ -f "$TLS/client.key" ] || make_tls
    local jaas='org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_sluice="sluice-secret";'
    # SCRAM credentials live in the cluster metadata: added by `format` (scram_users below).
    local scram='org.apache.kafka.common.security.scram.ScramLoginModule required;'
    cat >> "$RUN/server.properties" <<CONF
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$TLS_PASS
ssl.key.password=$TLS_PASS
ssl.client.auth=none
listener.name.mtls.ssl.client.auth=required
listener.name.mtls.ssl.truststore.type=PEM
listener.name.mtls.ssl.truststore.location=$TLS/ca.crt
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram
CONF
  fi
  cat > "$RUN/log4j2.properties" <<CONF
appender.file.type=File
appender.file.name=FILE
appender.file.fileName=$RUN/logs/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=FILE
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
CONF
}

java_run() {
  java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
    -cp "$LIBS/*" "$@"
}

start() {
  local fresh=0
  [ "${1:-}" = "--fresh" ] && fresh=1
  [ -f "$ROOT/.deps/kafka/.complete" ] || { log "Kafka jars missing: run scripts/setup.sh"; exit 1; }
  if is_running; then
    if [ $fresh -eq 0 ]; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
    stop
  fi
  local ports="$PORT $CPORT"
  [ "$SECURE" = 1 ] && ports="$ports $SSL_PORT $SASL_PORT $SASL_SSL_PORT $MTLS_PORT"
  for p in $ports; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      log "port $p on 127.0.0.1 is already in use by another process; choose another KAFKA_PORT"
      exit 1
    fi
  done
  [ $fresh -eq 1 ] && rm -rf "$RUN"
  write_config
  if [ ! -f "$RUN/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java_run kafka.tools.StorageTool random-uuid)
    local scram_users=()
    [ "$SECURE" = 1 ] && scram_users=(--add-scram 'SCRAM-SHA-512=[name=sluice,password=sluice-secret]')
    java_run kafka.tools.StorageTool format -t "$cluster_id" -c "$RUN/server.properties" \
      "${scram_users[@]}" > "$RUN/logs/format.log" 2>&1 || { log "format failed:"; cat "$RUN/logs/format.log" >&2; exit 1; }
  fi
  : > "$RUN/logs/server.log"
  # setsid: the broker is not in our process group, so Ctrl-C on `make` does not half-kill it;
  # `stop` ends it by pid.
  setsid bash -c 'exec "$@"' _ java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" \
    > "$RUN/logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  log "started pid $(cat "$PIDFILE") on 127.0.0.1:$PORT"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until is_ready; do
    if ! is_running; then
      log "broker exited during start-up; last lines of its logs:"
      tail -n 30 "$RUN/logs/stdout.log" "$RUN/logs/server.log" >&2 || true
      rm -f "$PIDFILE"; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "not ready after ${READY_TIMEOUT}s; stopping it"; stop; exit 1
    fi
    sleep 0.5
  done
  log "ready on 127.0.0.1:$PORT"
}

stop() {
  if ! [ -f "$PIDFILE" ]; then log "not running"; return 0; fi
  local pid; pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored SIGTERM; SIGKILL"; kill -KILL "$pid" || true; fi
  fi
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) if is_ready; then echo "running pid $(cat "$PIDFILE") port $PORT"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start [--fresh] | stop | status" >&2; exit 2 ;;
esac
