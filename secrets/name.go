package secrets

import (
	"fmt"
	"log/slog"
)

// Namer is implemented by sources that name themselves for logs and errors
// by their redacted URI ("env", "file:/run/secrets/db",
// "vault://vault:8200/database/creds/app", "awssm:prod/db"): the URI that
// would open them, without user-info. A name is never secret.
type Namer interface {
	Name() string
}

// NameOf returns src's name when it implements Namer, else its Go type.
func NameOf(src Source) string {
	if n, ok := src.(Namer); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", src)
}

// named gives a source its name and makes every fmt verb and log/slog print
// that name and nothing else, so no field holding a secret is ever printed
// (fmt prints unexported fields raw, ignoring their Format methods).
type named struct{ name string }

// Name returns the source's name.
func (n named) Name() string { return n.name }

// Format prints the source's name for every verb.
func (n named) Format(f fmt.State, verb rune) {
	_, _ = f.Write([]byte("secrets.Source(" + n.name + ")"))
}

// LogValue logs the source's name.
func (n named) LogValue() slog.Value { return slog.StringValue(n.name) }
