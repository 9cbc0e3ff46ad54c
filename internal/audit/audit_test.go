package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/store"
)

// slowSink is a store that takes its time and counts what it got.
type slowSink struct {
	mu      sync.Mutex
	delay   time.Duration
	fail    atomic.Int32 // fail this many more batches
	logins  map[string]int
	repos   map[string]int
	batches int
	largest int
}

func newSlowSink(delay time.Duration) *slowSink {
	return &slowSink{delay: delay, logins: map[string]int{}, repos: map[string]int{}}
}

func (s *slowSink) InsertEvents(_ context.Context, logins []store.LoginEvent, repos []store.RepositoryEvent) error {
	time.Sleep(s.delay)
	if s.fail.Add(-1) >= 0 {
		return errors.New("database unavailable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range logins {
		s.logins[e.CorrelationID]++
	}
	for _, e := range repos {
		s.repos[e.CorrelationID]++
	}
	s.batches++
	s.largest = max(s.largest, len(logins)+len(repos))
	return nil
}

// TestWriterUnderLoad: many senders, a small queue and a slow store. The queue fills, senders
// wait (back pressure), and every event arrives exactly once, in batches.
func TestWriterUnderLoad(t *testing.T) {
	sink := newSlowSink(2 * time.Millisecond)
	w := audit.NewWriter(sink, slog.New(slog.DiscardHandler), audit.Options{Queue: 16, Batch: 64})
	const senders, each = 32, 250
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("%d-%d", g, i)
				if i%2 == 0 {
					w.Login(context.Background(), store.LoginEvent{CorrelationID: id})
				} else {
					w.Repository(context.Background(), store.RepositoryEvent{CorrelationID: id})
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if got := len(sink.logins) + len(sink.repos); got != senders*each {
		t.Fatalf("%d distinct events stored, want %d", got, senders*each)
	}
	// Every event exactly once, each of its own kind: even i are login events, odd i repository events.
	for g := range senders {
		for i := range each {
			id := fmt.Sprintf("%d-%d", g, i)
			wantLogin, wantRepo := 1, 0
			if i%2 == 1 {
				wantLogin, wantRepo = 0, 1
			}
			if sink.logins[id] != wantLogin || sink.repos[id] != wantRepo {
				t.Fatalf("event %s stored %d times as a login event and %d times as a repository event; want %d and %d",
					id, sink.logins[id], sink.repos[id], wantLogin, wantRepo)
			}
		}
	}
	st := w.Stats()
	if st.Written != senders*each || st.Failed != 0 {
		t.Errorf("stats %+v, want %d written, 0 failed", st, senders*each)
	}
	if st.Waits == 0 {
		t.Error("no sender ever waited: the queue never applied back pressure")
	}
	if sink.largest < 2 || sink.batches >= senders*each {
		t.Errorf("%d batches, largest %d: events were not batched", sink.batches, sink.largest)
	}
}

// TestWriterStoreFailures: a store that fails for a while gets the batch again; one that keeps
// failing gets the events written to the log, never dropped silently.
func TestWriterStoreFailures(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		sink := newSlowSink(0)
		sink.fail.Store(2)
		w := audit.NewWriter(sink, slog.New(slog.DiscardHandler), audit.Options{Retries: 3})
		w.Login(context.Background(), store.LoginEvent{CorrelationID: "a"})
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if sink.logins["a"] != 1 || w.Stats().Failed != 0 {
			t.Fatalf("stored %d, stats %+v", sink.logins["a"], w.Stats())
		}
	})
	t.Run("gives up into the log", func(t *testing.T) {
		sink := newSlowSink(0)
		sink.fail.Store(100)
		var buf bytes.Buffer
		w := audit.NewWriter(sink, slog.New(slog.NewJSONHandler(&buf, nil)), audit.Options{Retries: 1})
		w.Login(context.Background(), store.LoginEvent{CorrelationID: "lost-but-logged", Reason: "bad_password"})
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w.Stats().Failed != 1 || !strings.Contains(buf.String(), "lost-but-logged") || !strings.Contains(buf.String(), "login event not stored") {
			t.Fatalf("stats %+v, log:\n%s", w.Stats(), buf.String())
		}
	})
}

// TestWriterAfterClose: an event recorded after Close (a request finishing late in shutdown)
// is written synchronously rather than lost or panicking on a closed queue.
func TestWriterAfterClose(t *testing.T) {
	sink := newSlowSink(0)
	w := audit.NewWriter(sink, slog.New(slog.DiscardHandler), audit.Options{})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Repository(context.Background(), store.RepositoryEvent{CorrelationID: "late"})
	if sink.repos["late"] != 1 {
		t.Fatal("the late event was not written")
	}
}

// TestWriterIntoStore writes through the real SQLite store under concurrency and reads the
// events back with filters, then purges them by age.
func TestWriterIntoStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "berth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := audit.NewWriter(st, slog.New(slog.DiscardHandler), audit.Options{Queue: 8})
	old := time.Now().Add(-100 * 24 * time.Hour)
	var wg sync.WaitGroup
	const senders, each = 8, 200
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := store.LoginEvent{Time: time.Now(), Registry: "default", Operation: audit.OpToken, Identity: fmt.Sprintf("user%d", g),
					IP: "192.0.2.1", Status: 200, Result: store.ResultSuccess, CorrelationID: fmt.Sprintf("c-%d-%d", g, i)}
				if i%10 == 0 {
					e.Status, e.Result, e.Reason, e.Time = 401, store.ResultFailure, "bad_password", old
				}
				w.Login(ctx, e)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	logins, _, err := st.CountEvents(ctx)
	if err != nil || logins != senders*each {
		t.Fatalf("%d login events stored (%v), want %d", logins, err, senders*each)
	}
	failed, err := st.LoginEvents(ctx, store.EventFilter{Result: store.ResultFailure, Identity: "USER3", Limit: 1000})
	if err != nil || len(failed) != each/10 {
		t.Fatalf("user3's failures: %d (%v), want %d", len(failed), err, each/10)
	}
	one, err := st.LoginEvents(ctx, store.EventFilter{CorrelationID: "c-5-7"})
	if err != nil || len(one) != 1 || one[0].Identity != "user5" {
		t.Fatalf("by correlation id: %+v (%v)", one, err)
	}
	n, err := st.PurgeEvents(ctx, time.Now().Add(-90*24*time.Hour))
	if err != nil || n != senders*each/10 {
		t.Fatalf("purged %d (%v), want %d", n, err, senders*each/10)
	}
	if left, _, _ := st.CountEvents(ctx); left != senders*each*9/10 {
		t.Fatalf("%d left after the purge", left)
	}
}

// TestAggregation: failures that name no verified identity are written one by one up to
// firstFew per kind and interval, then counted into one event; other events are never counted;
// what the last interval counted is written by Close; keys beyond maxAggregates are counted
// together under one address.
func TestAggregation(t *testing.T) {
	sink := &memSink{}
	w := audit.NewWriter(sink, slog.New(slog.DiscardHandler), audit.Options{Aggregate: time.Hour})
	ctx := context.Background()
	for i := range 25 {
		w.Login(ctx, store.LoginEvent{IP: "198.51.100.1", Registry: "r", Operation: "registry", Result: store.ResultFailure, Reason: "invalid_token", Message: "bad", CorrelationID: fmt.Sprint(i)})
	}
	for range 3 {
		w.Login(ctx, store.LoginEvent{IP: "198.51.100.1", Registry: "r", Operation: "token", Result: store.ResultFailure, Reason: "bad_password"})
		w.Login(ctx, store.LoginEvent{IP: "198.51.100.1", Registry: "r", Operation: "token", Result: store.ResultSuccess})
	}
	for i := range 10_050 { // many addresses, one attempt each past the first few of one
		w.Login(ctx, store.LoginEvent{IP: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), Registry: "r", Operation: "token", Result: store.ResultFailure, Reason: "unknown_identity"})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	logins := sink.logins()
	byReason := map[string][]store.LoginEvent{}
	for _, e := range logins {
		byReason[e.Reason] = append(byReason[e.Reason], e)
	}
	inv := byReason["invalid_token"]
	if len(inv) != 11 || inv[10].Attempts != 15 || inv[10].CorrelationID != "24" || !strings.Contains(inv[10].Message, "15 more such attempts") {
		t.Errorf("invalid_token: %d events, last %+v", len(inv), inv[len(inv)-1])
	}
	if len(byReason["bad_password"]) != 3 || len(byReason[""]) != 3 {
		t.Errorf("events of identities: %d failures, %d successes", len(byReason["bad_password"]), len(byReason[""]))
	}
	unknown, total := byReason["unknown_identity"], 0
	for _, e := range unknown {
		total += max(e.Attempts, 1)
	}
	many := unknown[len(unknown)-1]
	// 9 999 addresses had a key of their own (invalid_token holds the 10 000th); the other 51 were
	// counted together: 10 written one by one, 41 in the last event.
	if total != 10_050 || many.IP != "(many addresses)" || many.Attempts != 41 || len(unknown) != 9_999+10+1 {
		t.Errorf("unknown_identity: %d events for %d attempts; the last %+v", len(unknown), total, many)
	}
}

// memSink keeps the login events it gets, in order.
type memSink struct {
	mu sync.Mutex
	ls []store.LoginEvent
}

func (s *memSink) InsertEvents(_ context.Context, logins []store.LoginEvent, _ []store.RepositoryEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ls = append(s.ls, logins...)
	return nil
}

func (s *memSink) logins() []store.LoginEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.LoginEvent(nil), s.ls...)
}
