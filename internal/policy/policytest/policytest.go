// Package policytest reads the hand-written decision table (internal/policy/testdata/
// decisions.txt) that the policy's unit test and the end-to-end test both check berth against.
package policytest

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Table is the decision table, read.
type Table struct {
	Roles       map[string][2][]string         // role → per mode (rbac, rbac-abac) → actions
	Conditional map[string]bool                // roles that take conditions
	Conditions  map[string]map[string][]string // name → action → repositories let through
	Scopes      map[string]bool                // scope → covers registry r
	Fixed       map[string][2]Fixed            // identity → per mode
	Control     map[string][]string            // role → control-plane permissions
	RoleOrder   []string
}

// Fixed is what an identity that roles do not describe may do.
type Fixed struct{ Actions, Repos []string }

// Fields splits a column; "-" is the empty list.
func Fields(s string) []string {
	f := strings.Fields(s)
	if len(f) == 1 && f[0] == "-" {
		return nil
	}
	return f
}

// Read parses the table at path.
func Read(path string) (Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return Table{}, err
	}
	defer f.Close()
	e := Table{Roles: map[string][2][]string{}, Conditional: map[string]bool{}, Conditions: map[string]map[string][]string{},
		Scopes: map[string]bool{}, Fixed: map[string][2]Fixed{}, Control: map[string][]string{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		cols := strings.Split(rest, "|")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		bad := fmt.Errorf("%s:%d: malformed %q", path, n, line)
		want := map[string]int{"role": 3, "condition": 3, "scope": 2, "fixed": 4, "control": 2, "conditional": 1}[kind]
		if want == 0 || len(cols) != want {
			return Table{}, bad
		}
		mode := 0
		if kind == "role" || kind == "fixed" {
			switch cols[1] {
			case "rbac":
			case "rbac-abac":
				mode = 1
			default:
				return Table{}, bad
			}
		}
		switch kind {
		case "role":
			r, seen := e.Roles[cols[0]]
			if !seen {
				e.RoleOrder = append(e.RoleOrder, cols[0])
			}
			r[mode] = Fields(cols[2])
			e.Roles[cols[0]] = r
		case "conditional":
			e.Conditional[rest] = true
		case "condition":
			if e.Conditions[cols[0]] == nil {
				e.Conditions[cols[0]] = map[string][]string{}
			}
			for _, a := range Fields(cols[1]) {
				e.Conditions[cols[0]][a] = Fields(cols[2])
			}
		case "scope":
			e.Scopes[cols[0]] = cols[1] == "yes"
		case "fixed":
			r := e.Fixed[cols[0]]
			r[mode] = Fixed{Fields(cols[2]), Fields(cols[3])}
			e.Fixed[cols[0]] = r
		case "control":
			e.Control[cols[0]] = Fields(cols[1])
		}
	}
	return e, sc.Err()
}

// NameAttribute is the attribute the table's conditions test.
const NameAttribute = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]"

// ConditionTexts are the conditions the table names.
var ConditionTexts = map[string]string{
	"none":   "",
	"equals": NameAttribute + " StringEqualsIgnoreCase 'TEAM-A/X'",
	"prefix": NameAttribute + " StringStartsWithIgnoreCase 'team-a/'",
	"like":   NameAttribute + " StringLike 'team-?/x' AND !(" + NameAttribute + " StringStartsWith 'team-b')",
	"idiom": `(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})
 )
 OR
 (
  ` + NameAttribute + ` StringEqualsIgnoreCase 'team-a/x'
 )
)`,
}
