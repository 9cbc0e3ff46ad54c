// Package portal drives the portal in a real browser: Debian's Chromium, headless, through
// chromedp. Each flow keeps a screenshot of every page it sees (BERTH_ARTIFACTS, default
// .work/artifacts/portal at the top of the checkout) and runs axe-core (BERTH_AXE, or axe.min.js
// on PATH, installed by scripts/install-test-tools.sh) on it.
package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// tool is registrytest.Tool.
func tool(t *testing.T, name string) string { return registrytest.Tool(t, name) }

// axeSource is axe-core's script: BERTH_AXE, or axe.min.js in a directory of PATH.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("BERTH_AXE")
	if path == "" {
		for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
			if _, err := os.Stat(filepath.Join(dir, "axe.min.js")); err == nil {
				path = filepath.Join(dir, "axe.min.js")
				break
			}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || path == "" {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("axe-core (axe.min.js) is required: run scripts/install-test-tools.sh (%v)", err)
		}
		t.Skipf("no axe-core: %v", err)
	}
	return string(b)
}

// tab is one browser tab with the test's checks.
type tab struct {
	t      *testing.T
	ctx    context.Context
	base   string
	shots  string
	axe    string
	dialog chan string // alerts the page opened (markup run as script would open one)
	// noAxe: scripts are off in this browser, axe-core's timers with them (the same pages are
	// checked with scripts on).
	noAxe bool
}

// newTab starts a headless Chromium for the test and opens a tab on base.
func newTab(t *testing.T, base string) *tab { return newTabWith(t, base) }

// newTabWith starts Chromium with more options (scripts off, a small window).
func newTabWith(t *testing.T, base string, more ...chromedp.ExecAllocatorOption) *tab {
	t.Helper()
	exe := tool(t, "chromium")
	axe := axeSource(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()))
	opts = append(opts, more...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	shots := os.Getenv("BERTH_ARTIFACTS")
	if shots == "" {
		shots = filepath.Join("..", "..", ".work", "artifacts")
	}
	shots = filepath.Join(shots, "portal")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, ctx: ctx, base: base, shots: shots, axe: axe, dialog: make(chan string, 16)}
	err := chromedp.Listen(ctx, func(ev any) {
		d, ok := ev.(*page.EventJavascriptDialogOpening)
		if !ok {
			return
		}
		if d.Type == page.DialogTypeAlert { // a confirm() is the portal's own question
			select {
			case tb.dialog <- d.Message:
			default:
			}
		}
		go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
	})
	if err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{Permission: &browser.PermissionDescriptor{Name: name},
			Setting: "granted", Origin: base}); err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}
	return tb
}

// within bounds one step of the browser.
func (tb *tab) within() (context.Context, context.CancelFunc) {
	return context.WithTimeout(tb.ctx, 30*time.Second)
}

func (tb *tab) fail(err error) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(".error") || {innerText: ""}).innerText`))
	tb.t.Fatalf("browser at %s: %v %s", loc, err, shown)
}

// run runs steps in order.
func (tb *tab) run(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := tb.within()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.fail(err)
	}
}

// eval evaluates a script (awaiting a promise) and returns its value.
func eval[T any](tb *tab, script string) T {
	tb.t.Helper()
	ctx, cancel := tb.within()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fail(err)
	}
	return v
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// open goes to a portal path and waits for its heading.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.run(chromedp.Navigate(tb.base+path), chromedp.WaitVisible(css("h1")))
}

// text is the text of the first element matching sel (waiting for it).
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	tb.run(chromedp.WaitVisible(css(sel)))
	ctx, cancel := tb.within()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
	if err != nil {
		tb.fail(err)
	}
	return strings.TrimSpace(s)
}

// waitText waits until the text of sel holds want (a form that htmx answers in place replaces
// the element while the test looks), and returns that text.
func (tb *tab) waitText(sel, want string) string {
	tb.t.Helper()
	var got string
	for range 100 {
		got = eval[string](tb, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel))
		if strings.Contains(got, want) {
			return got
		}
		tb.run(chromedp.Sleep(100 * time.Millisecond))
	}
	tb.t.Fatalf("%s never held %q: %q", sel, want, got)
	return got
}

// exists reports whether sel matches an element now.
func (tb *tab) exists(sel string) bool {
	tb.t.Helper()
	return eval[int](tb, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)) > 0
}

// set sets a field's value (an input, a select, a text area) as typing or choosing would.
func (tb *tab) set(sel, value string) {
	tb.t.Helper()
	tb.run(chromedp.WaitVisible(css(sel)))
	js, _ := json.Marshal(value)
	if n := eval[int](tb, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return 0; e.value = %s; e.dispatchEvent(new Event("change", {bubbles: true})); return 1 })()`, sel, js)); n != 1 {
		tb.t.Fatalf("no field %s", sel)
	}
}

// submit fills fields (selector → value), clicks the button sel, then waits for wait.
func (tb *tab) submit(fields map[string]string, button, wait string) {
	tb.t.Helper()
	for sel, v := range fields {
		tb.set(sel, v)
	}
	tb.run(chromedp.Click(css(button)), chromedp.WaitVisible(css(wait)))
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// check keeps a screenshot of the page and fails the test on an axe-core violation of serious
// or critical impact, or on an alert the page opened.
func (tb *tab) check(name string) {
	tb.t.Helper()
	ctx, cancel := tb.within()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.fail(err)
	}
	file := filepath.Join(tb.shots, unsafeName.ReplaceAllString(strings.ToLower(tb.t.Name()+"-"+name), "-")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	if tb.noAxe {
		return
	}
	eval[int](tb, tb.axe+";0")
	out := eval[string](tb, `axe.run(document).then(r => JSON.stringify({passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))}))`)
	var res struct {
		Passes     int
		Violations []struct {
			ID, Impact, Help string
			Nodes            []string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Passes == 0 {
		tb.t.Fatalf("axe-core's answer on %s: %v (%s)", name, err, out)
	}
	for _, v := range res.Violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			tb.t.Errorf("accessibility (%s) on %s: %s — %s %v", v.Impact, name, v.ID, v.Help, v.Nodes)
		} else {
			tb.t.Logf("accessibility (%s) on %s: %s — %s", v.Impact, name, v.ID, v.Help)
		}
	}
	select {
	case msg := <-tb.dialog:
		tb.t.Errorf("an alert opened on %s: %q", name, msg)
	default:
	}
}

// signIn signs in through the form.
func (tb *tab) signIn(user, password string) {
	tb.t.Helper()
	tb.open("/portal/signin")
	tb.submit(map[string]string{"#username": user, "#password": password}, `form[action="/portal/signin"] button[type=submit]`, "#signed-in-as")
	if got := tb.text("#signed-in-as"); got != user {
		tb.t.Fatalf("signed in as %q, want %q", got, user)
	}
}
