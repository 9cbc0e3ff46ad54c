package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-registry/berth/client"
)

// app is what client commands share: the streams, the environment, the output options and the
// signed-in session.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	output, query  string
	caFile         string // --ca-file
	insecure       bool   // --insecure
	onlyErrors     bool   // --only-show-errors: no warnings
	debug          bool   // --debug: each HTTP request on stderr
	debugMu        sync.Mutex
	tableColumns   string   // the command's curated -o table columns (columns.go)
	order          []string // the columns of the query's multiselect hash, in its order
	openURL        func(string)
}

// session is the client state `berth auth login` saves in $BERTH_CONFIG_DIR/config.json.
type session struct {
	Server      string `json:"server"`
	User        string `json:"user,omitempty"`
	Type        string `json:"type,omitempty"`
	AccessToken string `json:"accessToken,omitempty"`
	ExpiresOn   string `json:"expiresOn,omitempty"`
	// RefreshToken renews AccessToken when it expires (used once, replaced at each renewal).
	RefreshToken string `json:"refreshToken,omitempty"`
	// TLS is how berth auth login was told to trust the server.
	TLS tlsOptions `json:"tls,omitzero"`
}

func (a *app) configDir() (string, error) {
	if d := a.getenv("BERTH_CONFIG_DIR"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home folder for ~/.berth (set BERTH_CONFIG_DIR): %w", err)
	}
	return filepath.Join(home, ".berth"), nil
}

func (a *app) loadSession() (session, error) {
	dir, err := a.configDir()
	if err != nil {
		return session{}, err
	}
	var s session
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	return s, nil
}

func (a *app) saveSession(s session) error {
	dir, err := a.configDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".config.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "config.json"))
}

// client returns a client signed in with the saved session.
func (a *app) client() (*client.Client, session, error) {
	s, err := a.loadSession()
	if err != nil {
		return nil, s, err
	}
	if s.Server == "" || s.AccessToken == "" {
		return nil, s, errors.New("not signed in: run 'berth auth login --server URL -u NAME'")
	}
	if t, err := time.Parse(time.RFC3339, s.ExpiresOn); err == nil && time.Now().Add(time.Minute).After(t) {
		if s.RefreshToken == "" {
			return nil, s, fmt.Errorf("the sign-in to %s expired on %s: run 'berth auth login' again", s.Server, s.ExpiresOn)
		}
		if s, err = a.renew(context.Background(), s); err != nil {
			return nil, s, err
		}
	}
	c, err := a.newClient(s, s.Server, s.AccessToken)
	return c, s, err
}

// print renders v as the --output format after applying --query.
func (a *app) print(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var g any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		return err
	}
	q := a.query
	if tq := a.tableQuery(g); tq != "" {
		q = tq
	}
	if q != "" {
		// JMESPath compares float64 numbers only (json.Number is a string to it).
		if g, err = jmespath.Search(azQuery(q), queryNumbers(g)); err != nil {
			return fmt.Errorf("--query %q: %w", q, err)
		}
		a.order = hashKeys(q)
	}
	return a.render(g, a.output)
}

// rows turns a value into rows of scalar cells with column names: in the order given (a
// query's), else the name first and the rest alphabetically.
func rows(v any, order []string) (cols []string, out [][]string) {
	var items []any
	switch x := v.(type) {
	case []any:
		items = x
	case nil:
		return nil, nil
	default:
		items = []any{x}
	}
	seen := map[string]bool{}
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			continue
		}
		for k, val := range m {
			if _, nested := val.(map[string]any); nested || seen[k] {
				continue
			}
			if _, list := val.([]any); list {
				continue
			}
			seen[k] = true
			cols = append(cols, k)
		}
	}
	pos := func(c string) int {
		for i, o := range order {
			if o == c {
				return i
			}
		}
		return len(order)
	}
	sort.Slice(cols, func(i, j int) bool {
		if pi, pj := pos(cols[i]), pos(cols[j]); pi != pj {
			return pi < pj
		}
		ri, rj := rank(cols[i]), rank(cols[j])
		if ri != rj {
			return ri < rj
		}
		return cols[i] < cols[j]
	})
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			out = append(out, []string{cell(it)})
			continue
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = cell(m[c])
		}
		out = append(out, row)
	}
	if len(cols) == 0 && len(out) > 0 {
		cols = []string{"Result"}
	}
	return cols, out
}

func rank(col string) int {
	switch col {
	case "name", "appId", "username", "time":
		return 0
	}
	return 1
}

// cell is one value of a table or tsv, on one line and with nothing a terminal would act on.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return safe(x)
	case []any, map[string]any:
		b, _ := json.Marshal(x)
		return safe(string(b))
	case float64: // from --query: 1048576, not 1.048576e+06
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return safe(fmt.Sprint(v))
}

func (a *app) table(v any) error {
	cols, rs := rows(v, a.order)
	if len(cols) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	head, rule := make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		c = safe(c)
		head[i] = strings.ToUpper(c[:1]) + c[1:]
		rule[i] = strings.Repeat("-", len(c))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	fmt.Fprintln(tw, strings.Join(rule, "\t"))
	for _, r := range rs {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func (a *app) tsv(v any) error {
	if list, ok := v.([]any); ok {
		scalar := true
		for _, it := range list {
			_, m := it.(map[string]any)
			scalar = scalar && !m
		}
		if scalar {
			// As az: each item a row, a list's values separated by tabs.
			for _, it := range list {
				if inner, ok := it.([]any); ok {
					cells := make([]string, len(inner))
					for i, x := range inner {
						cells[i] = cell(x)
					}
					fmt.Fprintln(a.stdout, strings.Join(cells, "\t"))
					continue
				}
				fmt.Fprintln(a.stdout, cell(it))
			}
			return nil
		}
	}
	_, rs := rows(v, a.order)
	for _, r := range rs {
		if _, err := fmt.Fprintln(a.stdout, strings.Join(r, "\t")); err != nil {
			return err
		}
	}
	return nil
}

// secret reads a secret from stdin (fromStdin), else from a prompt without echo on a terminal.
func (a *app) secret(prompt string, fromStdin bool) (string, error) {
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(a.stdin, 64<<10))
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", fmt.Errorf("no terminal to ask for the %s: pass it on stdin with --password-stdin", strings.ToLower(strings.TrimSuffix(prompt, ": ")))
	}
	fmt.Fprint(a.stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	return string(b), err
}

// confirm asks before a deletion az asks about (acr delete, acr token delete, acr scope-map
// delete): --yes answers for the user; without a terminal to ask at, it refuses with az's words.
func (a *app) confirm(question string, yes bool) error {
	if yes {
		return nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("Unable to prompt for confirmation as no tty available. Use --yes.")
	}
	fmt.Fprintf(a.stderr, "%s (y/n): ", question)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	if answer := strings.ToLower(strings.TrimSpace(line)); answer == "y" || answer == "yes" {
		return nil
	}
	return errors.New("not confirmed: nothing was deleted")
}

// yesFlag adds --yes/-y to a delete command.
func yesFlag(c *cobra.Command, yes *bool) {
	c.Flags().BoolVarP(yes, "yes", "y", false, "do not prompt for confirmation")
}

// call runs fn with a signed-in client. When the server refuses the directory token (expired
// by the server's clock, or its signing key retired), it renews the sign-in once and calls fn
// again.
func (a *app) call(ctx context.Context, fn func(ctx context.Context, c *client.Client) (any, error)) (any, session, error) {
	c, s, err := a.client()
	if err != nil {
		return nil, s, err
	}
	v, err := fn(ctx, c)
	if client.IsStatus(err, http.StatusUnauthorized) && s.RefreshToken != "" {
		if s, err = a.renew(ctx, s); err != nil {
			return nil, s, err
		}
		if c, err = a.newClient(s, s.Server, s.AccessToken); err != nil {
			return nil, s, err
		}
		v, err = fn(ctx, c)
	}
	return v, s, transportHint(err, s.Server)
}

// run is a command that needs a signed-in client and prints what fn returns.
func (a *app) run(fn func(ctx context.Context, c *client.Client) (any, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		v, _, err := a.call(cmd.Context(), fn)
		if err != nil || v == nil {
			return err
		}
		return a.print(v)
	}
}
