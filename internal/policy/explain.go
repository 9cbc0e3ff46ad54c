package policy

import (
	"net/netip"

	"github.com/berth-registry/berth/internal/access"
)

// Step is one rule that a decision considered: a network rule, the admin user, a token and its
// scope map, a role assignment, anonymous pull.
type Step struct {
	Source  string
	Ref     string
	Matched bool
	Detail  string
}

// trace collects steps; a nil *trace collects nothing, which is how Decide runs.
type trace struct{ steps []Step }

func (t *trace) add(source, ref string, matched bool, detail string) {
	if t == nil {
		return
	}
	t.steps = append(t.steps, Step{Source: source, Ref: ref, Matched: matched, Detail: detail})
}

// Explanation is a decision with everything that led to it.
type Explanation struct {
	Identity   string
	Registry   string
	Mode       string
	Resource   string
	Action     string
	DataAction string
	IP         string
	Allowed    bool
	Network    *Decision
	// Management, with an address, says whether it may use the management API.
	Management *Decision
	Decision   Decision
	Steps      []Step
}

// Explain decides as Decide does (and, when ip is valid, as the network rules do), recording
// every rule considered.
func Explain(s *Snapshot, p access.Principal, a Action, res Resource, ip netip.Addr) Explanation {
	tr := &trace{}
	e := Explanation{Identity: p.String(), Registry: res.Registry, Action: string(a), DataAction: DataAction(a), Resource: resourceName(res)}
	if m, ok := s.Mode(res.Registry); ok {
		e.Mode = m.String()
	}
	allowed := true
	if ip.IsValid() {
		e.IP = ip.Unmap().String()
		n := s.network(res.Registry, ip, tr)
		e.Network = &n
		allowed = n.Allow
	}
	e.Decision = decide(s, p, a, res, tr)
	e.Allowed = allowed && e.Decision.Allow
	e.Steps = tr.steps
	if e.Steps == nil {
		e.Steps = []Step{}
	}
	return e
}
