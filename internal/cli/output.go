package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// outputs are the --output formats, az's.
var outputs = []string{"json", "jsonc", "yaml", "yamlc", "table", "tsv", "none"}

// ANSI colors of jsonc and yamlc, as az's.
const (
	colorKey    = "\x1b[94m"
	colorString = "\x1b[32m"
	colorOther  = "\x1b[36m"
	colorReset  = "\x1b[0m"
)

// render writes g (decoded JSON) in format.
func (a *app) render(g any, format string) error {
	switch format {
	case "json", "", "jsonc":
		out, err := json.MarshalIndent(g, "", "  ")
		if err != nil {
			return err
		}
		if format == "jsonc" {
			out = colorJSON(out)
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", out)
		return err
	case "yaml", "yamlc":
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(yamlValue(g)); err != nil {
			return err
		}
		out := buf.Bytes()
		if format == "yamlc" {
			out = colorYAML(out)
		}
		_, err := a.stdout.Write(out)
		return err
	case "table":
		return a.table(g)
	case "tsv":
		return a.tsv(g)
	case "none":
		return nil
	}
	return fmt.Errorf("--output %q is not one of %s", format, strings.Join(outputs, ", "))
}

// queryNumbers turns json.Number into float64, the numbers JMESPath compares (exact to 2^53).
func queryNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = queryNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = queryNumbers(e)
		}
	case json.Number:
		f, _ := x.Float64()
		return f
	}
	return v
}

// yamlValue turns json.Number into numbers YAML writes plainly.
func yamlValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = yamlValue(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = yamlValue(e)
		}
		return s
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

var (
	jsonToken = regexp.MustCompile(`"(?:[^"\\]|\\.)*"(\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?`)
	yamlKey   = regexp.MustCompile(`(?m)^(\s*(?:- )?)([^\s:#][^:#]*?):( |$)`)
)

func colorJSON(b []byte) []byte {
	return jsonToken.ReplaceAllFunc(b, func(tok []byte) []byte {
		switch {
		case bytes.HasSuffix(bytes.TrimSpace(tok), []byte(":")):
			return []byte(colorKey + string(bytes.TrimRight(bytes.TrimSuffix(bytes.TrimSpace(tok), []byte(":")), " ")) + colorReset + ":")
		case tok[0] == '"':
			return []byte(colorString + string(tok) + colorReset)
		}
		return []byte(colorOther + string(tok) + colorReset)
	})
}

func colorYAML(b []byte) []byte {
	return yamlKey.ReplaceAll(b, []byte("${1}"+colorKey+"${2}"+colorReset+":${3}"))
}

// azQuery rewrites JMESPath's legacy literals, which az (jmespath.py) accepts and the JMESPath
// specification no longer does: a back-tick literal that is not JSON (`SystemDefined`) is the
// string it spells, as jmespath.py reads it.
func azQuery(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch c {
		case '\'': // a raw string literal: copied as it is
			j := i + 1
			for j < len(q) && q[j] != '\'' {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(q) {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : j+1])
			i = j
		case '`':
			j := i + 1
			var lit strings.Builder
			for j < len(q) && q[j] != '`' {
				if q[j] == '\\' && j+1 < len(q) && q[j+1] == '`' {
					j++
				}
				lit.WriteByte(q[j])
				j++
			}
			if j >= len(q) {
				b.WriteString(q[i:])
				return b.String()
			}
			content := lit.String()
			if !json.Valid([]byte(content)) {
				quoted, _ := json.Marshal(strings.TrimSpace(content))
				content = string(quoted)
			}
			b.WriteString("`" + strings.ReplaceAll(content, "`", "\\`") + "`")
			i = j
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
