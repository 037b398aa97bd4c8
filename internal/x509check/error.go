package x509check

import "strings"

// Error is a server certificate that failed a check: what failed, how to
// fix it, and what the leaf certificate names.
type Error struct {
	// Subject and Names describe the leaf certificate ("" and nil when
	// unknown).
	Subject string
	Names   []string
	// Problem says what failed; Fix says how to fix it.
	Problem, Fix string
	// Err is the underlying x509 error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pgsecure: server certificate refused: ")
	b.WriteString(e.Problem)
	if e.Err != nil {
		b.WriteString(" (" + e.Err.Error() + ")")
	}
	if e.Fix != "" {
		b.WriteString("; " + e.Fix)
	}
	return b.String()
}

// Unwrap returns the underlying x509 error.
func (e *Error) Unwrap() error { return e.Err }
