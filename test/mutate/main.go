// Command mutate is berth's mutation tester: it changes the code of the access-control and
// durability packages one small change at a time (a negated condition, a dropped guard, a
// deleted call …), runs the tests that cover that package against each change through
// `go test -overlay` (the tree is never touched), and reports the changes no test noticed.
//
// Every surviving mutant must be listed in survivors.txt, as equivalent (with the reason no
// test can tell it from the original) or as open (a test is missing): an unlisted survivor
// fails the run, and so does a listed one that no longer survives or exists, so the list stays
// true. The hand mutants (hand.go) are the mutations issue 14 found surviving, rewritten as
// exact replacements: each must be killed.
//
//	go run ./test/mutate [-sample N] [-workers N] [-out table.md] [package …]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// target is a package to mutate and the test packages that judge its mutants.
type target struct {
	Pkg   string   // directory, relative to the module root
	Tests []string // package patterns
}

// targets are the packages of issue 14 and the test packages that judge each: its own, and
// the suites above it that drive it over HTTP (the sign-in paths of authn are tested there; the
// server's suite checks the events, sign-ins and purges the handlers record; the policy engine's
// reloads are tested in its own package). s3blob's suite needs
// MinIO and is left out.
var targets = []target{
	{"internal/policy", []string{"./internal/policy"}},
	{"internal/token", []string{"./internal/token", "./internal/oauth"}},
	{"internal/oauth", []string{"./internal/oauth", "./internal/server"}},
	{"internal/authn", []string{"./internal/authn", "./internal/oauth", "./internal/distribution", "./internal/server"}},
	{"internal/directory", []string{"./internal/directory", "./internal/oauth", "./internal/mgmt"}},
	{"internal/distribution", []string{"./internal/distribution", "./internal/server"}},
	{"internal/blob", []string{"./internal/blob", "./internal/blob/fsblob", "./internal/distribution"}},
	{"internal/blob/fsblob", []string{"./internal/blob/fsblob", "./internal/distribution", "./internal/server"}},
	// issue 20: what an external token proves, and who a single sign-on makes someone
	{"internal/federation", []string{"./internal/federation", "./internal/oauth"}},
	{"internal/sso", []string{"./internal/oauth", "./internal/store"}},
	// issue 22: the portal's sessions, CSRF checks and what it offers
	{"internal/portal", []string{"./internal/portal"}},
	// issue 23: the correlation ids and the access log every request goes through
	{"internal/reqlog", []string{"./internal/reqlog"}},
}

// Status of a mutant after its run.
const (
	Killed     = "KILLED"
	Lived      = "LIVED"
	NotCovered = "NOT COVERED"
	NotViable  = "NOT VIABLE" // does not compile
	TimedOut   = "TIMED OUT"  // counted as killed: the tests noticed
)

type result struct {
	mutant
	Status string
	Listed string // "equivalent" or "open" when survivors.txt lists it
	Output string // tail of go test's output for a failure to classify
}

func main() {
	sample := flag.Int("sample", 0, "run only this many mutants, picked evenly at random (fixed seed) from every package; 0 runs all")
	seed := flag.Uint64("seed", 14, "seed of -sample")
	workers := flag.Int("workers", 2, "mutants tested at once")
	out := flag.String("out", "", "also write the table (Markdown) to this file")
	survivorsPath := flag.String("survivors", "test/mutate/survivors.txt", "the listed survivors")
	list := flag.Bool("list", false, "list the mutants (of the sample, with -sample) and exit")
	hand := flag.Bool("hand", true, "run the hand mutants too")
	record := flag.String("record", "", "append each unlisted survivor to this file as \"open\", in survivors.txt's form, for review")
	save := flag.String("save", "", "also save every mutant's result to this file (JSON), for -rescore")
	rescore := flag.String("rescore", "", "run nothing: report the results -save runs left in these files (comma-separated; later files replace a package's rows) against survivors.txt as it is now")
	flag.Parse()
	o := options{sample: *sample, seed: *seed, workers: *workers, out: *out, survivors: *survivorsPath, record: *record, save: *save, rescore: *rescore, list: *list, hand: *hand}
	if err := run(o, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

type options struct {
	sample                                int
	seed                                  uint64
	workers                               int
	out, survivors, record, save, rescore string
	list, hand                            bool
}

// saved is what -save writes and -rescore reads: the statuses of one run.
type saved struct {
	Sample   int
	ByTarget map[string][]result
	Hand     []handResult
}

func run(o options, only []string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	listed, err := readSurvivors(filepath.Join(root, o.survivors))
	if err != nil {
		return err
	}
	if o.rescore != "" {
		// Several saved runs (comma-separated) make one report: a package's results come from
		// the last file that has them, so a package run again after new tests replaces its rows.
		sv := saved{ByTarget: map[string][]result{}}
		for _, f := range strings.Split(o.rescore, ",") {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			var one saved
			if err := json.Unmarshal(b, &one); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if one.Sample != 0 {
				return fmt.Errorf("%s is a sample run: only full runs are rescored", f)
			}
			maps.Copy(sv.ByTarget, one.ByTarget)
			if one.Hand != nil {
				sv.Hand = one.Hand
			}
		}
		return report(o, listed, sv)
	}
	sample, seed, workers, list, hand := o.sample, o.seed, o.workers, o.list, o.hand
	work, err := os.MkdirTemp("", "berth-mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	byTarget := map[string][]result{}
	for _, tg := range targets {
		if len(only) > 0 && !slices.Contains(only, tg.Pkg) {
			continue
		}
		ms, err := packageMutants(root, tg.Pkg)
		if err != nil {
			return err
		}
		if sample > 0 {
			ms = pick(ms, sample, len(targets), seed)
		}
		if list {
			for _, m := range ms {
				fmt.Printf("%s:%d:%d %s\n", m.File, m.Line, m.Col, m.Key)
			}
			continue
		}
		start := time.Now()
		// A full run first measures which lines the tests run, so that mutants no test reaches
		// are reported as such without a run; a sample runs each of its few mutants instead.
		var cov coverProfile
		timeout := 5 * time.Minute
		if sample == 0 {
			if cov, err = coverage(root, work, tg); err != nil {
				return fmt.Errorf("%s: coverage: %w", tg.Pkg, err)
			}
			timeout = 3*time.Since(start) + 60*time.Second
		}
		rs := runAll(root, work, tg, ms, cov, workers, timeout)
		byTarget[tg.Pkg] = rs
		fmt.Fprintf(os.Stderr, "%s: %d mutants in %s\n", tg.Pkg, len(rs), time.Since(start).Round(time.Second))
	}
	if list {
		return nil
	}
	sv := saved{Sample: sample, ByTarget: byTarget}
	if hand {
		sv.Hand = runHand(root, work)
	}
	if o.save != "" {
		if err := writeJSON(o.save, sv); err != nil {
			return err
		}
	}
	return report(o, listed, sv)
}

// report judges the results against survivors.txt, prints the table and fails on any problem.
func report(o options, listed map[string]listing, sv saved) error {
	var problems []string
	var all []result
	for pkg, rs := range sv.ByTarget {
		for i := range rs {
			rs[i].Listed = listed[rs[i].Key].kind
		}
		sv.ByTarget[pkg] = rs
		all = append(all, rs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Key < all[j].Key })
	// The list stays true: each listed survivor of a mutated package must exist and survive
	// (checked only on full runs of that package, as a sample does not run every mutant).
	if sv.Sample == 0 {
		for key, l := range listed {
			pkg := filepath.Dir(strings.SplitN(key, ":", 2)[0])
			rs, ran := sv.ByTarget[pkg]
			if !ran {
				continue
			}
			i := slices.IndexFunc(rs, func(r result) bool { return r.Key == key })
			switch {
			case i < 0:
				problems = append(problems, fmt.Sprintf("survivors.txt:%d lists %s, which is no longer a mutant: remove it", l.line, key))
			case rs[i].Status == Killed || rs[i].Status == TimedOut:
				problems = append(problems, fmt.Sprintf("survivors.txt:%d lists %s, which is now killed: remove it", l.line, key))
			}
		}
	}
	if o.record != "" {
		if err := recordSurvivors(o.record, all); err != nil {
			return err
		}
	}
	for _, r := range all {
		if (r.Status == Lived || r.Status == NotCovered) && r.Listed == "" {
			problems = append(problems, fmt.Sprintf("%s:%d:%d survived (%s): %s — add a test that kills it, or list it in %s with the reason it is equivalent",
				r.File, r.Line, r.Col, r.Status, r.Key, o.survivors))
		}
	}
	for _, h := range sv.Hand {
		if h.Status != Killed {
			problems = append(problems, fmt.Sprintf("hand mutant %q: %s %s", h.Name, h.Status, h.Detail))
		}
	}
	table := render(sv.ByTarget, sv.Hand, sv.Sample)
	fmt.Print(table)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(table), 0o644); err != nil {
			return err
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// packageMutants lists the mutants of the non-test files of one package directory.
func packageMutants(root, pkg string) ([]mutant, error) {
	entries, err := os.ReadDir(filepath.Join(root, pkg))
	if err != nil {
		return nil, err
	}
	var out []mutant
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		ms, err := findMutants(root, filepath.Join(pkg, n))
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// pick chooses about n/packages mutants of one package, the same ones for the same seed.
func pick(ms []mutant, n, packages int, seed uint64) []mutant {
	k := max(1, n/packages)
	if len(ms) <= k {
		return ms
	}
	r := rand.New(rand.NewPCG(seed, uint64(len(ms))))
	idx := r.Perm(len(ms))[:k]
	sort.Ints(idx)
	out := make([]mutant, 0, k)
	for _, i := range idx {
		out = append(out, ms[i])
	}
	return out
}

// runAll tests every mutant of one target, workers at a time.
func runAll(root, work string, tg target, ms []mutant, cov coverProfile, workers int, timeout time.Duration) []result {
	rs := make([]result, len(ms))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rs[i] = testMutant(root, filepath.Join(work, fmt.Sprintf("w%d", w)), tg, ms[i], cov, timeout)
				if st := rs[i].Status; st == Lived || st == NotCovered {
					fmt.Fprintf(os.Stderr, "  %s %s:%d:%d %s\n", st, ms[i].File, ms[i].Line, ms[i].Col, ms[i].Key)
				}
			}
		}()
	}
	for i := range ms {
		next <- i
	}
	close(next)
	wg.Wait()
	return rs
}

func testMutant(root, dir string, tg target, m mutant, cov coverProfile, timeout time.Duration) result {
	r := result{mutant: m}
	if !cov.covers(m.File, m.Line, m.Col) {
		r.Status = NotCovered
		return r
	}
	src, err := os.ReadFile(filepath.Join(root, m.File))
	if err != nil {
		r.Status, r.Output = NotViable, err.Error()
		return r
	}
	r.Status, r.Output = testWith(root, dir, map[string][]byte{m.File: m.apply(src)}, tg.Tests, timeout)
	return r
}

// testWith runs the test packages with files replaced (relative path → content) and says
// whether they noticed.
func testWith(root, dir string, files map[string][]byte, tests []string, timeout time.Duration) (status, output string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return NotViable, err.Error()
	}
	replace := map[string]string{}
	for rel, content := range files {
		p := filepath.Join(dir, strings.ReplaceAll(rel, "/", "_"))
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return NotViable, err.Error()
		}
		replace[filepath.Join(root, rel)] = p
	}
	overlay := filepath.Join(dir, "overlay.json")
	if err := writeJSON(overlay, map[string]any{"Replace": replace}); err != nil {
		return NotViable, err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// One package at a time, the mutated package's own tests first: most mutants die there,
	// and the packages after it are then neither linked nor run.
	var out string
	for _, pkg := range tests {
		cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-failfast", "-overlay", overlay, pkg)
		cmd.Dir = root
		cmd.WaitDelay = 5 * time.Second
		b, err := cmd.CombinedOutput()
		out = tail(string(b), 25)
		switch {
		case ctx.Err() != nil:
			return TimedOut, out
		case err == nil:
			continue
		case strings.Contains(string(b), "[build failed]") || strings.Contains(string(b), "[setup failed]"):
			return NotViable, out
		}
		return Killed, out
	}
	return Lived, out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
