package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// safe makes text from the server fit for a terminal: control characters (C0 with newline and
// tab, DEL, C1) and the bidirectional overrides are written as escapes, so that a value chosen by
// someone else (a user name sent without signing in, a repository name) can neither move the
// cursor, clear the screen, start a fake row in a table or tsv, nor reorder what is shown.
func safe(s string) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == unicode.ReplacementChar:
			b.WriteRune(r)
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SafeMessage is an error message made safe for a terminal (its own line breaks kept): the
// server's messages quote what clients sent, and clients are not all friendly.
func SafeMessage(s string) string { return safeLines(s) }

// safeLines is safe for text whose own line breaks are meant (messages): lines are kept.
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safe(l)
	}
	return strings.Join(lines, "\n")
}

func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional embeddings, overrides, isolates and marks
	}
	return false
}

// azError is an error az reports under a code: printed as "<time> An error occurred: CODE" and
// then the message, the layout runbooks grep for.
type azError struct{ code, msg string }

func (e *azError) Error() string { return e.code + ": " + e.msg }

// ErrorText is what berth prints on stderr for the error a command ended with.
func ErrorText(err error, now time.Time) string {
	var ae *azError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s An error occurred: %s\n%s", now.UTC().Format("2006-01-02 15:04:05.000000"), ae.code, SafeMessage(ae.msg))
	}
	return "berth: " + SafeMessage(err.Error())
}
