package pgsecure

import (
	"fmt"
	"log/slog"
)

// String describes the builder without its connection string, which may
// hold a password.
func (b *Builder) String() string {
	return fmt.Sprintf("pgsecure.Builder{connString:[REDACTED] rootCAFile:%q systemRoots:%t clientCertFile:%q pins:%d credentials:%t}",
		b.rootFile, b.systemRoots, b.clientCertFile, len(b.pins), b.creds != nil)
}

// GoString implements fmt.GoStringer like String.
func (b *Builder) GoString() string { return b.String() }

// Format implements fmt.Formatter so that every verb, %+v and %#v included,
// prints the redacted form.
func (b *Builder) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(b.String())) }

// LogValue implements slog.LogValuer with the redacted form.
func (b *Builder) LogValue() slog.Value { return slog.StringValue(b.String()) }
