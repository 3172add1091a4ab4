package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The fan-out benchmark's knobs. Its subscribers are real WebSocket clients
// in a child process (this test binary again, running
// TestFanoutBenchClients), so that the memory the benchmark measures in
// this process is the server's alone.
const (
	fanoutSubscribersEnv = "HMIS_BENCH_SUBSCRIBERS" // default fanoutDefaultSubscribers
	fanoutSessionsEnv    = "HMIS_BENCH_SESSIONS"    // distinct logins the subscribers use; default 20
	fanoutDefaultSubs    = 200

	fanoutChildURL   = "HMIS_FANOUT_CHILD_URL"
	fanoutChildToks  = "HMIS_FANOUT_CHILD_TOKENS"
	fanoutChildWard  = "HMIS_FANOUT_CHILD_WARD"
	fanoutChildCount = "HMIS_FANOUT_CHILD_SUBSCRIBERS"
)

// fanoutEventWait bounds the wait for every subscriber to hear of one event.
const fanoutEventWait = 3 * time.Minute

func fanoutEnvInt(b testing.TB, name string, dflt int) int {
	v := os.Getenv(name)
	if v == "" {
		return dflt
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// fanoutRaiseFileLimit lets this process and the client process it starts
// hold a socket per subscriber each, plus the database's and Redis's.
func fanoutRaiseFileLimit(b testing.TB, subscribers int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	want := uint64(subscribers)*2 + 1024
	if lim.Cur >= want {
		return
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("setrlimit: %v", err)
	}
	if lim.Cur < want {
		b.Fatalf("open files limited to %d; %d subscribers need %d", lim.Cur, subscribers, want)
	}
}

// serverMemory is what the Go runtime holds for live objects and for
// stacks, after collecting garbage.
func serverMemory() (heap, stacks int64) {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse), int64(m.StackInuse)
}

// settleGoroutines waits until the number of goroutines stops changing,
// so that every subscription the clients sent has been taken up.
func settleGoroutines() int {
	last, stable := runtime.NumGoroutine(), 0
	for stable < 5 {
		time.Sleep(200 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	return last
}

const fanoutPatientQuery = `query($id: ID!) { node(id: $id) { ... on Patient { id mrn givenName familyName birthDate sex } } }`

// fanoutOtherRequests sends patient queries one after another until stop
// closes and returns how long each took.
func fanoutOtherRequests(s *harness.Server, token, patientID string, stop <-chan struct{}) []time.Duration {
	var took []time.Duration
	for {
		select {
		case <-stop:
			return took
		default:
		}
		start := time.Now()
		r, err := s.Send(nil, token, fanoutPatientQuery, map[string]any{"id": patientID})
		if err != nil || len(r.Errors) > 0 {
			s.T.Errorf("patient query during the fan-out: %v %v", err, r.Errors)
			return took
		}
		took = append(took, time.Since(start))
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkCriticalLabFanout measures one ward's critical values reaching
// many bedside dashboards on one instance: N WebSocket subscribers of
// criticalLabResult(wardId) (HMIS_BENCH_SUBSCRIBERS, default 200), half
// nurses and half doctors over HMIS_BENCH_SESSIONS logins. Each iteration
// releases one critical potassium and waits for every subscriber to get
// it. It reports, from the verify request to each client's receipt, the
// median and 99th percentile, the first client's and the last client's; the server's memory
// per idle subscription (heap and stacks in use, before any event and
// again after the events); and the latency of patient queries sent
// meanwhile, beside the same queries on the idle server; and the CPU time
// the server used per event.
func BenchmarkCriticalLabFanout(b *testing.B) {
	n := fanoutEnvInt(b, fanoutSubscribersEnv, fanoutDefaultSubs)
	sessions := min(n, fanoutEnvInt(b, fanoutSessionsEnv, 20))
	fanoutRaiseFileLimit(b, n)
	if os.Getenv("HMIS_BENCH_HEAP_PROFILE") != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 256
	}

	s := harness.NewServer(b)
	d := s.Demo()
	desk := harness.NewLabDesk(b, s)
	w := setUpLabWards(b, s, d, desk)
	k := desk.Cat.Potassium.ID
	ward := w.Wards["MED-A"]
	var tokens []string
	for i := range sessions {
		user := "nurse"
		if i%2 == 1 {
			user = "doctor"
		}
		tokens = append(tokens, s.Login(user, harness.DemoPassword).AccessToken)
	}
	doctor := s.Token("doctor")
	verifier := s.Token("labtech2")

	idle := fanoutOtherRequests(s, doctor, w.MedA, closedAfter(2*time.Second))
	runtime.GC()
	goroutinesBefore := settleGoroutines()
	heapBefore, stacksBefore := serverMemory()

	clients := startFanoutClients(b, s, tokens, ward, n)
	goroutinesIdle := settleGoroutines()
	heapIdle, stacksIdle := serverMemory()
	writeHeapProfile := func(suffix string) {
		if path := os.Getenv("HMIS_BENCH_HEAP_PROFILE"); path != "" {
			f, err := os.Create(path + suffix)
			if err != nil {
				b.Fatal(err)
			}
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	// The idle subscriptions' memory. The profiles written just before
	// the timed events (".before", after the first event and the logins it
	// took) and after them (".after") give, with `go tool pprof -base`,
	// what the events allocated.
	writeHeapProfile("")

	// The first event proves every subscription is live, off the clock.
	release := func() (time.Duration, []time.Duration) {
		entered := desk.Entered(w.MedA, k, harness.Potassium(w.MedValues.CriticalHigh))
		start := time.Now()
		if r := s.Do(verifier, harness.LabVerifyMutation, map[string]any{"id": entered.ID}); len(r.Errors) > 0 {
			b.Fatal(harness.Describe(r))
		}
		got := clients.await(b, n, entered.ID)
		lat := make([]time.Duration, len(got))
		for i, at := range got {
			lat[i] = at.Sub(start)
		}
		return slices.Max(lat), lat
	}
	release()
	writeHeapProfile(".before")

	var all, lasts, firsts []time.Duration
	stop := make(chan struct{})
	otherDone := make(chan []time.Duration)
	go func() { otherDone <- fanoutOtherRequests(s, doctor, w.MedA, stop) }()
	b.ResetTimer()
	if path := os.Getenv("HMIS_BENCH_CPU_PROFILE"); path != "" {
		// Only the events, not the logins and subscriptions before them.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	cpuBefore, machineBefore, clientsBefore := processCPU(b), machineCPU(), clients.cpu()
	var memBefore runtime.MemStats
	runtime.ReadMemStats(&memBefore)
	for i := 0; i < b.N; i++ {
		last, lat := release()
		lasts = append(lasts, last)
		firsts = append(firsts, slices.Min(lat))
		all = append(all, lat...)
	}
	cpu, machine, clientsCPU := processCPU(b)-cpuBefore, machineCPU()-machineBefore, clients.cpu()-clientsBefore
	var memAfter runtime.MemStats
	runtime.ReadMemStats(&memAfter)
	writeHeapProfile(".after")
	b.StopTimer()
	close(stop)
	during := <-otherDone
	heapAfter, stacksAfter := serverMemory()

	b.ReportMetric(float64(n), "subscribers")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(firsts, 0.50)), "first-client-ms")
	b.ReportMetric(ms(percentile(lasts, 0.50)), "last-client-ms")
	perSub := func(heap, stacks int64) float64 {
		return float64(heap-heapBefore+stacks-stacksBefore) / float64(n)
	}
	b.ReportMetric(perSub(heapIdle, stacksIdle), "B/idle-sub")
	b.ReportMetric(float64(stacksIdle-stacksBefore)/float64(n), "stack-B/idle-sub")
	b.ReportMetric(perSub(heapAfter, stacksAfter), "B/sub-after-events")
	b.ReportMetric(float64(goroutinesIdle-goroutinesBefore)/float64(n), "goroutines/sub")
	b.ReportMetric(ms(cpu)/float64(b.N), "server-cpu-ms/event")
	if machineBefore > 0 {
		b.ReportMetric(ms(machine)/float64(b.N), "machine-cpu-ms/event")
	}
	if clientsBefore > 0 {
		b.ReportMetric(ms(clientsCPU)/float64(b.N), "clients-cpu-ms/event")
	}
	b.ReportMetric(float64(memAfter.TotalAlloc-memBefore.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MB/event")
	b.ReportMetric(float64(memAfter.NumGC-memBefore.NumGC)/float64(b.N), "gc/event")
	b.ReportMetric(ms(percentile(idle, 0.50)), "other-idle-p50-ms")
	b.ReportMetric(ms(percentile(during, 0.50)), "other-p50-ms")
	b.ReportMetric(ms(percentile(during, 0.99)), "other-p99-ms")
}

// processCPU is the CPU time this process (the server, and the few
// requests the benchmark sends itself) has used: on a shared machine a
// steadier measure of the fan-out's cost than how long it took.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the CPU time every process on the machine has used (the
// server, the clients' process, the database): with two cores, an event
// whose fan-out needs a second of it cannot reach its last client in less
// than half a second. Zero where /proc/stat cannot be read.
func machineCPU() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:8] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func closedAfter(d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	time.AfterFunc(d, func() { close(c) })
	return c
}

// fanoutClients is the client process and what it reports.
type fanoutClients struct {
	lines chan string
	pid   int
}

// cpu is the CPU time the clients' process has used; zero where
// /proc cannot tell.
func (c *fanoutClients) cpu() time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	_, rest, ok := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	user, err1 := strconv.ParseInt(f[11], 10, 64)
	sys, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(user+sys) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func startFanoutClients(b *testing.B, s *harness.Server, tokens []string, ward string, n int) *fanoutClients {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutBenchClients$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		fanoutChildURL+"="+"ws"+strings.TrimPrefix(s.HTTP.URL, "http")+"/graphql",
		fanoutChildToks+"="+strings.Join(tokens, ","),
		fanoutChildWard+"="+ward,
		fanoutChildCount+"="+strconv.Itoa(n),
	)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &fanoutClients{lines: make(chan string, 4*n), pid: cmd.Process.Pid}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	b.Cleanup(func() {
		stdin.Close() // the clients leave when their input ends
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.After(fanoutEventWait)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				b.Fatal("the client process ended before its subscribers were ready")
			}
			if l == "ready" {
				return c
			}
			if strings.HasPrefix(l, "fail ") {
				b.Fatal(l)
			}
		case <-deadline:
			b.Fatalf("%d subscribers not ready within %s", n, fanoutEventWait)
		}
	}
}

// await returns when every one of n subscribers has received the event
// of result, with the time each received it.
func (c *fanoutClients) await(b *testing.B, n int, result string) []time.Time {
	b.Helper()
	var got []time.Time
	deadline := time.After(fanoutEventWait)
	for len(got) < n {
		select {
		case l, ok := <-c.lines:
			if !ok {
				b.Fatal("the client process ended")
			}
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			switch {
			case f[0] == "fail":
				b.Fatal(l)
			case f[0] == "event" && len(f) == 3:
				if f[1] != result {
					b.Fatalf("a subscriber got result %s, want %s", f[1], result)
				}
				at, err := strconv.ParseInt(f[2], 10, 64)
				if err != nil {
					b.Fatal(l)
				}
				got = append(got, time.Unix(0, at))
			}
		case <-deadline:
			b.Fatalf("%d of %d subscribers got result %s within %s", len(got), n, result, fanoutEventWait)
		}
	}
	return got
}

// fanoutResultID reads the result ID of a next message that carries data
// and no errors without decoding the whole message (the server writes
// these frames payload first and type last); anything else is left to
// the full decoding.
func fanoutResultID(raw []byte) (string, bool) {
	const head, tail, key = `{"payload":{"data":{"criticalLabResult":{`, `"type":"next"}`, `"result":{"id":"`
	if !bytes.HasPrefix(raw, []byte(head)) || !bytes.HasSuffix(raw, []byte(tail)) || bytes.Contains(raw, []byte(`"errors":`)) {
		return "", false
	}
	_, rest, ok := bytes.Cut(raw, []byte(key))
	if !ok {
		return "", false
	}
	id, _, ok := bytes.Cut(rest, []byte(`"`))
	return string(id), ok
}

// TestFanoutBenchClients is the client process of BenchmarkCriticalLabFanout
// and does nothing on its own. It opens the subscribers, says "ready", and
// then prints "event <resultId> <unix-ns>" for each event each subscriber
// receives, until its input ends.
func TestFanoutBenchClients(t *testing.T) {
	url := os.Getenv(fanoutChildURL)
	if url == "" {
		t.Skip("the client process of BenchmarkCriticalLabFanout")
	}
	tokens := strings.Split(os.Getenv(fanoutChildToks), ",")
	ward := os.Getenv(fanoutChildWard)
	n, err := strconv.Atoi(os.Getenv(fanoutChildCount))
	if err != nil {
		t.Fatal(err)
	}
	// The clients share the server's two cores, so they do as little as a
	// dashboard could: receipts are buffered and written every few
	// milliseconds rather than one write each (a receipt's time is taken
	// when its message is read, not when it is written out).
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		if !strings.HasPrefix(format, "event ") {
			out.Flush()
		}
		outMu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				outMu.Lock()
				out.Flush()
				outMu.Unlock()
			}
		}
	}()

	// Dial a few at a time: the listener's backlog is bounded.
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	for i := range n {
		wg.Add(1)
		ready.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			err := fanoutClient(ctx, url, tokens[i%len(tokens)], ward, func() { <-sem; ready.Done() }, say)
			if err != nil && ctx.Err() == nil {
				say("fail subscriber %d: %v", i, err)
			}
		}()
	}
	ready.Wait()
	say("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	wg.Wait()
}

// fanoutClient is one dashboard: graphql-transport-ws, connection_init,
// one criticalLabResult subscription; ready is called once it is sent.
func fanoutClient(ctx context.Context, url, token, ward string, ready func(), say func(string, ...any)) error {
	once := sync.OnceFunc(ready)
	defer once()
	dialCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(dialCtx, url, &websocket.DialOptions{Subprotocols: []string{harness.ProtoTransportWS}})
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	write := func(m map[string]any) error {
		raw, _ := json.Marshal(m)
		return conn.Write(ctx, websocket.MessageText, raw)
	}
	if err := write(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
		return err
	}
	if _, raw, err := conn.Read(dialCtx); err != nil {
		return err
	} else if !strings.Contains(string(raw), "connection_ack") {
		return fmt.Errorf("no connection_ack: %s", raw)
	}
	if err := write(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]any{
		"query": criticalLabResultSubscription, "variables": map[string]any{"wardId": ward},
	}}); err != nil {
		return err
	}
	once()
	for {
		_, raw, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		at := time.Now().UnixNano()
		if id, ok := fanoutResultID(raw); ok {
			say("event %s %d", id, at)
			continue
		}
		var m struct {
			Type    string `json:"type"`
			Payload struct {
				Data struct {
					CriticalLabResult struct{ Result struct{ ID string } }
				}
				Errors []harness.GQLError
			}
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		switch m.Type {
		case "ping":
			if err := write(map[string]any{"type": "pong"}); err != nil {
				return err
			}
		case "next":
			if len(m.Payload.Errors) > 0 {
				return fmt.Errorf("errors: %s", raw)
			}
			say("event %s %d", m.Payload.Data.CriticalLabResult.Result.ID, at)
		case "pong", "ka":
		default:
			return fmt.Errorf("unexpected message: %s", raw)
		}
	}
}
