package client

import "strings"

// ParseChallenge reads a WWW-Authenticate value with one challenge, such as
// `Bearer realm="https://r.example/oauth2/token",service="r.example",scope="repository:a:pull,push"`:
// its scheme in lower case and its parameters (names in lower case). Quoted values may hold
// commas and backslash escapes (RFC 9110 §11.2). A value without a scheme gives "".
func ParseChallenge(h string) (scheme string, params map[string]string) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	params = map[string]string{}
	for i := 0; i < len(rest); {
		for i < len(rest) && (rest[i] == ' ' || rest[i] == ',' || rest[i] == '\t') {
			i++
		}
		eq := strings.IndexByte(rest[i:], '=')
		if eq < 0 {
			break
		}
		name := strings.ToLower(strings.TrimSpace(rest[i : i+eq]))
		i += eq + 1
		for i < len(rest) && rest[i] == ' ' {
			i++
		}
		var v strings.Builder
		if i < len(rest) && rest[i] == '"' {
			i++
			for i < len(rest) && rest[i] != '"' {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				v.WriteByte(rest[i])
				i++
			}
			i++ // the closing quote
		} else {
			end := strings.IndexByte(rest[i:], ',')
			if end < 0 {
				end = len(rest) - i
			}
			v.WriteString(strings.TrimSpace(rest[i : i+end]))
			i += end
		}
		if name != "" {
			params[name] = v.String()
		}
	}
	return strings.ToLower(scheme), params
}
