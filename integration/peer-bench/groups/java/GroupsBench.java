// Java side of the group benchmarks (issue 15): the same two measurements as
// ../src/main.rs, with the Apache Kafka Java client of the test kit's jars, printing the same
// JSON lines. Compiled and run by ../run.py:
//   java GroupsBench rebalance BROKERS TOPIC PARTITIONS PROTOCOL ASSIGNOR MEMBERS RUNS
//   java GroupsBench share BROKERS TOPIC GROUP COUNT
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupsBench {
    /** One member: a KafkaConsumer polled by its own thread; `owned` follows its listener. */
    static final class Member implements Runnable {
        final Properties props;
        final String topic;
        final Set<Integer> owned = ConcurrentHashMap.newKeySet();
        final AtomicBoolean stop = new AtomicBoolean();
        final Thread thread;
        volatile KafkaConsumer<byte[], byte[]> consumer;

        Member(Properties props, String topic) {
            this.props = props;
            this.topic = topic;
            this.thread = new Thread(this);
            thread.start();
        }

        public void run() {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props,
                    new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                consumer = c;
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                        for (TopicPartition tp : ps) owned.remove(tp.partition());
                    }
                    public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                        for (TopicPartition tp : ps) owned.add(tp.partition());
                    }
                    public void onPartitionsLost(Collection<TopicPartition> ps) {
                        for (TopicPartition tp : ps) owned.remove(tp.partition());
                    }
                });
                while (!stop.get()) {
                    try {
                        c.poll(Duration.ofMillis(50));
                    } catch (WakeupException e) {
                        // stop requested
                    }
                }
            }
        }

        void leave() throws InterruptedException {
            stop.set(true);
            KafkaConsumer<byte[], byte[]> c = consumer;
            if (c != null) c.wakeup();
            thread.join();
        }
    }

    static boolean stable(List<Member> members, int partitions) {
        Set<Integer> all = new HashSet<>();
        int total = 0;
        for (Member m : members) {
            Set<Integer> o = new HashSet<>(m.owned);
            if (o.isEmpty()) return false;
            total += o.size();
            all.addAll(o);
        }
        return total == partitions && all.size() == partitions;
    }

    static double untilStable(List<Member> members, int partitions, long sinceNanos)
            throws InterruptedException {
        while (!stable(members, partitions)) {
            if (System.nanoTime() - sinceNanos > 120_000_000_000L) {
                System.err.println("group not stable within 120 s");
                System.exit(1);
            }
            Thread.sleep(5);
        }
        return (System.nanoTime() - sinceNanos) / 1e6;
    }

    public static void main(String[] a) throws Exception {
        if (a.length >= 8 && a[0].equals("rebalance")) {
            rebalance(a);
        } else if (a.length >= 5 && a[0].equals("share")) {
            share(a);
        } else {
            System.err.println("usage: GroupsBench rebalance BROKERS TOPIC PARTITIONS PROTOCOL ASSIGNOR MEMBERS RUNS | share BROKERS TOPIC GROUP COUNT");
            System.exit(2);
        }
        System.exit(0);
    }

    static void rebalance(String[] a) throws Exception {
        String brokers = a[1], topic = a[2], protocol = a[4], assignor = a[5];
        int partitions = Integer.parseInt(a[3]);
        int members = Integer.parseInt(a[6]), runs = Integer.parseInt(a[7]);
        long stamp = System.currentTimeMillis();
        for (int run = 0; run < runs; run++) {
            Properties p = new Properties();
            p.put("bootstrap.servers", brokers);
            p.put("group.id", "rb-java-" + protocol + "-" + assignor + "-" + members + "-" + stamp + "-" + run);
            p.put("group.protocol", protocol);
            if (protocol.equals("classic")) {
                String cls = assignor.equals("range")
                        ? "org.apache.kafka.clients.consumer.RangeAssignor"
                        : "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
                p.put("partition.assignment.strategy", cls);
            } else {
                p.put("group.remote.assignor", assignor);
            }
            List<Member> group = new ArrayList<>();
            long t = System.nanoTime();
            for (int i = 0; i < members; i++) group.add(new Member(p, topic));
            double initial = untilStable(group, partitions, t);
            t = System.nanoTime();
            group.add(new Member(p, topic));
            double join = untilStable(group, partitions, t);
            t = System.nanoTime();
            Member leaving = group.remove(0);
            Thread closer = new Thread(() -> {
                try { leaving.leave(); } catch (InterruptedException e) { }
            });
            closer.start();
            double leave = untilStable(group, partitions, t);
            closer.join();
            System.out.printf(Locale.ROOT,
                "{\"client\":\"java\",\"protocol\":\"%s\",\"assignor\":\"%s\",\"members\":%d,\"run\":%d,"
                + "\"initial_ms\":%.0f,\"join_ms\":%.0f,\"leave_ms\":%.0f}%n",
                protocol, assignor, members, run, initial, join, leave);
            System.out.flush();
            for (Member m : group) m.leave();
        }
    }

    static void share(String[] a) throws Exception {
        String brokers = a[1], topic = a[2], group = a[3];
        long count = Long.parseLong(a[4]);
        long t = System.nanoTime();
        Properties p = new Properties();
        p.put("bootstrap.servers", brokers);
        p.put("group.id", group);
        long got = 0;
        long first = 0;
        try (KafkaShareConsumer<byte[], byte[]> c = new KafkaShareConsumer<>(p,
                new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic));
            while (got < count) {
                ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(500));
                if (!rs.isEmpty() && first == 0) first = System.nanoTime();
                got += rs.count();
            }
            double secs = (System.nanoTime() - t) / 1e9;
            double fromFirst = first == 0 ? 0 : (System.nanoTime() - first) / 1e9;
            System.out.printf(Locale.ROOT,
                "{\"client\":\"java\",\"records\":%d,\"secs\":%.3f,\"secs_from_first\":%.3f,\"rate\":%.0f}%n",
                got, secs, fromFirst, got / secs);
            System.out.flush();
        }
    }
}
