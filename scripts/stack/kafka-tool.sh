#!/usr/bin/env bash
# Run an Apache Kafka command-line tool with the class path that
# scripts/stack.sh assembled under .stack/kafka/lib (or $CHORUS_STACK_DIR/kafka/lib).
#
#   scripts/stack/kafka-tool.sh <MainClass|alias> args...
#
#   scripts/stack/kafka-tool.sh org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#   scripts/stack/kafka-tool.sh topics --bootstrap-server 127.0.0.1:9092 --create --topic t --partitions 6
#
# Aliases: topics, consumer-groups, console-consumer, console-producer,
# broker-api-versions, get-offsets, configs, storage, metadata-quorum,
# delete-records, producer-perf, consumer-perf, jmx.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="${CHORUS_STACK_DIR:-$REPO/.stack}" # as in scripts/stack.sh
LIB="$STACK/kafka/lib"

if [[ $# -lt 1 ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
[[ -f $LIB/.complete ]] || { echo "kafka-tool.sh: no Kafka class path in $LIB; run scripts/stack.sh up first" >&2; exit 1; }

main=$1
shift
case $main in
  topics) main=org.apache.kafka.tools.TopicCommand ;;
  consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
  broker-api-versions) main=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
  configs) main=kafka.admin.ConfigCommand ;;
  storage) main=kafka.tools.StorageTool ;;
  metadata-quorum) main=org.apache.kafka.tools.MetadataQuorumCommand ;;
  delete-records) main=org.apache.kafka.tools.DeleteRecordsCommand ;;
  producer-perf) main=org.apache.kafka.tools.ProducerPerformance ;;
  consumer-perf) main=org.apache.kafka.tools.ConsumerPerformance ;;
  jmx) main=org.apache.kafka.tools.JmxTool ;;
esac

# Short-lived admin tools: small heap, C1 only and serial GC start fastest.
# Perf tools get the full JIT and a larger heap so they measure the broker.
case $main in
  *Performance) jvm=(-Xmx1g -XX:+UseG1GC) ;;
  *) jvm=(-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC) ;;
esac
opts=("${jvm[@]}" -Djava.awt.headless=true -Xlog:cds=off -Xlog:cds+dynamic=off)
# shellcheck disable=SC2206 # KAFKA_TOOL_OPTS is a list of JVM options
opts+=(${KAFKA_TOOL_OPTS:-})
opts+=(-Dlog4j2.configurationFile="$REPO/scripts/stack/kafka-tools-log4j2.properties" -cp "$LIB/*")

# A class-data archive halves the start (~0.65 s -> ~0.35 s); the first run
# writes it (under a private name, then renamed, so concurrent runs are safe).
jsa="$STACK/kafka/tools.jsa"
if [[ -f $jsa ]]; then
  exec java "${opts[@]}" -XX:SharedArchiveFile="$jsa" "$main" "$@"
fi
rc=0
java "${opts[@]}" -XX:ArchiveClassesAtExit="$jsa.$$" "$main" "$@" || rc=$?
if [[ -s $jsa.$$ ]]; then mv -f "$jsa.$$" "$jsa"; else rm -f "$jsa.$$"; fi
exit "$rc"
