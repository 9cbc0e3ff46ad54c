package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. In the YAML file and the environment it is an integer or a number
// with a unit: 512, 16KiB, 4MiB, 64GiB, 1TiB (powers of 1024), or kB, MB, GB, TB (powers of 1000).
type Size int64

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"k": 1 << 10, "ki": 1 << 10, "m": 1 << 20, "mi": 1 << 20, "g": 1 << 30, "gi": 1 << 30, "t": 1 << 40, "ti": 1 << 40,
	"kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000,
}

// ParseSize reads a Size: digits, then an optional unit (case does not matter; a space between
// is allowed).
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size: write bytes, or a number and a unit (16KiB, 4MiB, 64GiB)", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if err != nil || !ok {
		return 0, fmt.Errorf("%q is not a size: write bytes, or a number and a unit (16KiB, 4MiB, 64GiB)", s)
	}
	if n > (1<<63-1)/unit {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(n * unit), nil
}

// String writes s with the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.n, u.name)
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalYAML writes s as String does.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

var sizeType = reflect.TypeOf(Size(0))

// decodeNode sets v from the YAML node n found at path (dotted YAML keys). Scalars are read as
// the environment's strings are (setFromString), so a value means the same in both places.
// Errors name the key by its path and line; an unknown key also names the nearest known one.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "key:" with nothing: the default stays
	}
	where := func() string {
		if path == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("line %d: %s", n.Line, path)
	}
	switch {
	case v.Kind() == reflect.Struct && v.Type() != sizeType:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: want a mapping of keys (%s), not %s", where(), strings.Join(keysOf(v.Type()), ", "), describe(n))
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			full := join(path, key)
			if line, dup := seen[key]; dup {
				return fmt.Errorf("line %d: %s is set twice (first on line %d)", k.Line, full, line)
			}
			seen[key] = k.Line
			f, ok := fieldByTag(v, key)
			if !ok {
				msg := fmt.Sprintf("line %d: unknown key %s", k.Line, full)
				if near := nearest(key, keysOf(v.Type())); near != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", join(path, near))
				} else {
					msg += fmt.Sprintf(" (known here: %s)", strings.Join(keysOf(v.Type()), ", "))
				}
				return fmt.Errorf("%s", msg)
			}
			if err := decodeNode(val, f, full); err != nil {
				return err
			}
		}
		return nil
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: want a list (- item per line), not %s", where(), describe(n))
		}
		var items []string // nil when empty, as the defaults
		for _, it := range n.Content {
			if it.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s: want a list of strings, not %s", it.Line, path, describe(it))
			}
			items = append(items, it.Value)
		}
		v.Set(reflect.ValueOf(items))
		return nil
	default:
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: want a single value, not %s", where(), describe(n))
		}
		if err := setFromString(v, n.Value); err != nil {
			return fmt.Errorf("%s: %v", where(), err)
		}
		return nil
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == key && tag != "-" {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

// nearest is the known key closest to key: within an edit distance of a third of its length
// (at least 2), or else one that starts the other (cert, certificate), or "".
func nearest(key string, known []string) string {
	key = strings.ToLower(key)
	best, bestD := "", max(2, len(key)/3)+1
	for _, k := range known {
		if d := distance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		for _, k := range known {
			if len(k) >= 3 && len(key) >= 3 && (strings.HasPrefix(key, k) || strings.HasPrefix(k, key)) {
				return k
			}
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
