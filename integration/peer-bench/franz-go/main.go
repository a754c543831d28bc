// franz-go side of the peer comparison: the same command line and one-line JSON output as
// the Rust harnesses (see ../src/lib.rs).
//
//	bench-franz-go produce --brokers B --topic T --count N --size S --corpus FILE --acks all|1
//	    --idempotent true|false --compression none|lz4|zstd --linger-ms 5 --batch-size 1000000
//	    --max-in-flight 5 [--rate R] [--keys K] [--idle-secs S --idle-rate R]
//	bench-franz-go consume --brokers B --topic T --count N [--group G] [--partitions 3]
//	    [--idle-exit-ms MS] [--commit-at-exit 0|1] [--idle-secs S]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

func die(msg string) {
	fmt.Fprintln(os.Stderr, "error: "+msg)
	os.Exit(2)
}

type args map[string]string

func (a args) str(k, def string) string {
	if v, ok := a[k]; ok {
		return v
	}
	if def == "\x00" {
		die("--" + k + " is required")
	}
	return def
}

func (a args) num(k string, def int64) int64 {
	v, ok := a[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		die("--" + k + ": bad number " + v)
	}
	return n
}

func parse() (string, args) {
	if len(os.Args) < 2 {
		die("missing subcommand (produce|consume)")
	}
	a := args{}
	rest := os.Args[2:]
	for i := 0; i < len(rest); i += 2 {
		if !strings.HasPrefix(rest[i], "--") || i+1 >= len(rest) {
			die("bad argument " + rest[i])
		}
		a[rest[i][2:]] = rest[i+1]
	}
	return os.Args[1], a
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func produce(a args) {
	size := int(a.num("size", 100))
	corpus := a.str("corpus", "\x00")
	f, err := os.Open(corpus)
	if err != nil {
		die(err.Error())
	}
	var values [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		if len(line) != size {
			die(fmt.Sprintf("corpus %s must hold lines of exactly %d bytes", corpus, size))
		}
		values = append(values, line)
	}
	f.Close()
	if len(values) == 0 {
		die("empty corpus")
	}
	count := a.num("count", 100000)
	rate := a.num("rate", 0)
	topic := a.str("topic", "\x00")

	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(a.str("brokers", "\x00"), ",")...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Duration(a.num("linger-ms", 5)) * time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(a.num("batch-size", 1000000))),
	}
	// The request cap (franz-go's BrokerMaxWriteBytes, 100 MiB by default; Java's
	// max.request.size): only set for side-by-side checks of how batches are packed.
	if n := a.num("max-request-bytes", 0); n > 0 {
		opts = append(opts, kgo.BrokerMaxWriteBytes(int32(n)))
	}
	switch a.str("acks", "all") {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	default:
		die("acks must be all or 1")
	}
	// With idempotence franz-go always allows 5 requests in flight per broker (Kafka >= 1.0)
	// and rejects MaxProduceRequestsInflightPerBroker; without it the option applies.
	if a.str("idempotent", "true") != "true" {
		opts = append(opts, kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(int(a.num("max-in-flight", 5))))
	}
	switch a.str("compression", "none") {
	case "none":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		die("compression must be none, lz4 or zstd")
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		die(err.Error())
	}
	defer cl.Close()

	var acked, failed atomic.Int64
	var mu sync.Mutex
	hist := hdrhistogram.New(1, 3_600_000_000, 3)
	var firstErr atomic.Value
	// The record timestamp is set by Produce (time.Now()) and is the send time.
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		acked.Add(1)
		us := time.Since(r.Timestamp).Microseconds()
		if us < 1 {
			us = 1
		}
		mu.Lock()
		_ = hist.RecordValue(us)
		mu.Unlock()
	}
	ctx := context.Background()
	// Warm-up: one record acknowledged before the clock starts (as for every client).
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: values[0]}).FirstErr(); err != nil {
		die("warm-up: " + err.Error())
	}
	// Latency runs: start the measured window at the same process age as every client
	// (BENCH_START_AT_MS; see start_delay in ../src/lib.rs).
	if ms, err := strconv.ParseInt(os.Getenv("BENCH_START_AT_MS"), 10, 64); err == nil {
		if d := time.Until(procStart.Add(time.Duration(ms) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
	}
	keys := a.num("keys", 0)
	send := func(rate, from, to int64) {
		start := time.Now()
		for i := from; i < to; i++ {
			if rate > 0 {
				due := start.Add(time.Duration((i - from) * int64(time.Second) / rate))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			r := &kgo.Record{Value: values[i%int64(len(values))]}
			if keys > 0 {
				r.Key = []byte(fmt.Sprintf("k%d", i%keys))
			}
			cl.Produce(ctx, r, promise)
		}
		if err := cl.Flush(ctx); err != nil {
			die("flush: " + err.Error())
		}
	}
	start := time.Now()
	send(rate, 0, count)
	secs := time.Since(start).Seconds()
	// Burst-then-idle: keep sending --idle-rate records/s for --idle-secs after the burst.
	idleSecs, idleRate := a.num("idle-secs", 0), a.num("idle-rate", 10)
	extra := map[string]any{}
	if idleSecs > 0 {
		extra["burst_end_secs"] = secsSinceProcessStart()
		extra["idle_records"] = idleSecs * idleRate
		send(idleRate, count, count+idleSecs*idleRate)
		count += idleSecs * idleRate
	}
	var fe any
	if v := firstErr.Load(); v != nil {
		fe = v
	}
	ack := acked.Load() + 1 // + the warm-up record
	out := map[string]any{
		"status": "ok", "role": "produce", "client": "franz-go", "api": "kgo",
		"sent": count + 1, "acked": ack, "failed": failed.Load(), "secs": secs,
		"msgs_per_sec": float64(ack) / secs, "mb_per_sec": float64(ack) * float64(size) / 1e6 / secs,
		"p50_us": hist.ValueAtQuantile(50), "p99_us": hist.ValueAtQuantile(99),
		"p999_us": hist.ValueAtQuantile(99.9), "max_us": hist.Max(), "first_error": fe,
	}
	for k, v := range extra {
		out[k] = v
	}
	emit(out)
}

func consume(a args) {
	topic := a.str("topic", "\x00")
	count := a.num("count", 100000)
	group := a.str("group", "")
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(a.str("brokers", "\x00"), ",")...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	if group != "" {
		opts = append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	} else {
		parts := map[int32]kgo.Offset{}
		for p := int32(0); p < int32(a.num("partitions", 3)); p++ {
			parts[p] = kgo.NewOffset().AtStart()
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	}
	created := time.Now()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		die(err.Error())
	}
	defer cl.Close()
	var received, bytes int64
	var first, last time.Time
	ends := map[int32]int64{}
	idleExit := time.Duration(a.num("idle-exit-ms", 0)) * time.Millisecond
	done := func() bool {
		if idleExit == 0 || received >= count {
			return received >= count
		}
		if last.IsZero() {
			return time.Since(created) >= max(30*time.Second, idleExit)
		}
		return time.Since(last) >= idleExit
	}
	for !done() {
		ctx := context.Background()
		cancel := func() {}
		if idleExit > 0 {
			ctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
		}
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			if err == context.DeadlineExceeded {
				return
			}
			fmt.Fprintf(os.Stderr, "fetch error %s-%d: %v\n", t, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			// The clock for the first record, and per record only with --idle-exit-ms (as
			// every client's loop in this harness).
			if first.IsZero() {
				first = time.Now()
			}
			if idleExit > 0 {
				last = time.Now()
			}
			received++
			if idleExit > 0 && r.Offset+1 > ends[r.Partition] {
				ends[r.Partition] = r.Offset + 1
			}
			bytes += int64(len(r.Value))
		})
	}
	secs := time.Since(first).Seconds()
	if idleExit > 0 && !last.IsZero() {
		secs = last.Sub(first).Seconds()
	}
	// --idle-secs S (burst-then-idle memory run): keep polling the drained topic for S s.
	var idleExtra map[string]any
	if idleSecs := a.num("idle-secs", 0); idleSecs > 0 {
		idleExtra = map[string]any{"burst_end_secs": secsSinceProcessStart()}
		var n int64
		until := time.Now().Add(time.Duration(idleSecs) * time.Second)
		for time.Now().Before(until) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			fetches := cl.PollFetches(ctx)
			cancel()
			n += int64(fetches.NumRecords())
		}
		idleExtra["idle_records"] = n
	}
	// --commit-at-exit 1: one synchronous commit of what was polled, before Close.
	if group != "" && a.num("commit-at-exit", 0) != 0 {
		if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "commit at exit: %v\n", err)
		}
	}
	api := "kgo-direct"
	if group != "" {
		api = "kgo-group"
	}
	out := map[string]any{
		"status": "ok", "role": "consume", "client": "franz-go", "api": api,
		"received": received, "bytes": bytes, "secs": secs,
		"startup_secs": first.Sub(created).Seconds(),
		"msgs_per_sec": float64(received) / secs, "mb_per_sec": float64(bytes) / 1e6 / secs,
	}
	for k, v := range idleExtra {
		out[k] = v
	}
	if len(ends) > 0 {
		pairs := [][2]int64{}
		for p, e := range ends {
			pairs = append(pairs, [2]int64{int64(p), e})
		}
		out["ends"] = pairs
	}
	emit(out)
}

// secsSinceProcessStart: seconds since this process started (/proc/self/stat starttime and
// /proc/uptime), to line up phase marks with the driver's RSS samples.
func secsSinceProcessStart() float64 {
	stat, err1 := os.ReadFile("/proc/self/stat")
	up, err2 := os.ReadFile("/proc/uptime")
	if err1 != nil || err2 != nil {
		return 0
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	if len(fields) < 20 {
		return 0
	}
	ticks, _ := strconv.ParseFloat(fields[19], 64)
	uptime, _ := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	return uptime - ticks/100
}

// When the process started (close enough: package variables are set before main runs).
var procStart = time.Now()

func main() {
	cmd, a := parse()
	switch cmd {
	case "produce":
		produce(a)
	case "consume":
		consume(a)
	default:
		die("unknown command " + cmd)
	}
}
