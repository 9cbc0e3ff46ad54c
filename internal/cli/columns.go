package cli

import (
	"strconv"
	"strings"
)

// Curated -o table columns, as az's table transformers: per resource, what a person scans for,
// the name first. They apply to -o table without --query; with --query, the query's own
// columns are shown, in the order it names them.
const (
	colsRegistry         = `{NAME: name, "LOGIN SERVER": loginServer, "CREATION DATE": creationDate, "ADMIN ENABLED": adminUserEnabled, "ROLE ASSIGNMENT MODE": roleAssignmentMode, "ANONYMOUS PULL": anonymousPullEnabled, "PUBLIC NETWORK ACCESS": publicNetworkAccess}`
	colsCredentials      = `{USERNAME: username, PASSWORD: passwords[?name=='password'] | [0].value, PASSWORD2: passwords[?name=='password2'] | [0].value}`
	colsTokenCredentials = `{USERNAME: username, PASSWORD1: passwords[?name=='password1'] | [0].value, PASSWORD2: passwords[?name=='password2'] | [0].value}`
	colsToken            = `{NAME: name, "SCOPE MAP": scopeMapName, "PASSWORD1 EXPIRY": credentials.passwords[?name=='password1'] | [0] | not_null(expiry, 'Never'), "PASSWORD2 EXPIRY": credentials.passwords[?name=='password2'] | [0] | not_null(expiry, 'Never'), STATUS: status, "PROVISIONING STATE": provisioningState, "CREATION DATE": creationDate}`
	colsScopeMap         = `{NAME: name, TYPE: type, "CREATION DATE": creationDate, DESCRIPTION: description}`
	colsNetworkRules     = `ipRules[].{ACTION: action, "IP ADDRESS OR RANGE": ipAddressOrRange}`
	colsAssignment       = `{Principal: principalName, "Principal type": principalType, Role: roleDefinitionName, Scope: scope, Condition: condition}`
	colsRoleDefinition   = `[].{Name: roleName, Id: name, "In rbac": honouredInRbac, "In rbac-abac": honouredInRbacAbac, Conditions: conditionsAllowed}`
	colsUser             = `{Name: name, "Creation date": creationDate, "SSO only": ssoOnly}`
	colsGroup            = `{Name: name, Description: description, Members: length(members), "Creation date": creationDate}`
	colsSP               = `{DisplayName: displayName, AppId: appId, "Creation date": creationDate, Secrets: length(passwordCredentials)}`
	colsSPSecret         = `{AppId: appId, DisplayName: displayName, Password: password, Tenant: tenant}`
	colsExplain          = `steps[].{Source: source, Ref: ref, Matched: matched, Detail: detail}`
)

// table is the annotation that gives a command its curated -o table columns: cols, a JMESPath
// multiselect hash (applied to every item of a list, or to the one object) or a whole query.
func table(cols string) map[string]string { return map[string]string{"table": cols} }

// tableQuery is the query -o table applies to g without --query.
func (a *app) tableQuery(g any) string {
	if a.output != "table" || a.query != "" || a.tableColumns == "" {
		return ""
	}
	if _, list := g.([]any); list && strings.HasPrefix(a.tableColumns, "{") {
		return "[]." + a.tableColumns
	}
	return a.tableColumns
}

// hashKeys returns the keys of the multiselect hash a query ends with ({a: x, "b c": y}), in
// the order it names them: JMESPath answers a map, whose order Go does not keep, and az
// prints the columns in the query's order.
func hashKeys(q string) []string {
	q = strings.TrimSpace(q)
	if !strings.HasSuffix(q, "}") {
		return nil
	}
	// Find the '{' that opens the last top-level hash.
	depth, open := 0, -1
	for i := len(q) - 1; i >= 0; i-- {
		switch q[i] {
		case '}', ']', ')':
			depth++
		case '{', '[', '(':
			depth--
			if depth == 0 {
				open = i
			}
		}
		if open >= 0 {
			break
		}
	}
	if open < 0 || q[open] != '{' {
		return nil
	}
	var keys []string
	body := q[open+1 : len(q)-1]
	depth, start := 0, 0
	var quote byte
	for i := 0; i <= len(body); i++ {
		if i < len(body) {
			c := body[i]
			switch {
			case quote != 0:
				if c == '\\' {
					i++
				} else if c == quote {
					quote = 0
				}
				continue
			case c == '"' || c == '\'' || c == '`':
				quote = c
				continue
			case c == '{' || c == '[' || c == '(':
				depth++
				continue
			case c == '}' || c == ']' || c == ')':
				depth--
				continue
			case c != ',' || depth > 0:
				continue
			}
		}
		key, _, ok := strings.Cut(body[start:min(i, len(body))], ":")
		if !ok {
			return nil
		}
		key = strings.TrimSpace(key)
		if strings.HasPrefix(key, `"`) {
			uq, err := strconv.Unquote(key)
			if err != nil {
				return nil
			}
			key = uq
		}
		keys = append(keys, key)
		start = i + 1
	}
	return keys
}
