package portal

import (
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

// pageNames are the portal's pages; each is parsed with the layout.
var pageNames = []string{"error", "signin", "continue", "home", "overview", "usage", "repositories", "repository", "manifest", "keys", "tokens",
	"access", "network", "webhooks", "policies", "events", "directory"}

var funcs = template.FuncMap{
	"size": humanSize,
	"join": strings.Join,
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"short": short,
	"rows": func(prefix string, actions []string) repoRows {
		return repoRows{Prefix: prefix, Numbers: []int{1, 2, 3}, Actions: actions}
	},
	"has": func(list []string, s string) bool {
		for _, v := range list {
			if v == s {
				return true
			}
		}
		return false
	},
}

// repoRows are a form's repository rows (repository1…3, actions1…3).
type repoRows struct {
	Prefix  string
	Numbers []int
	Actions []string
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, p := range pageNames {
		t, err := template.New(p).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("portal: template %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

// humanSize is a byte count as people read it (1.5 MiB).
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

var _ fs.FS = assets
