package secrets

import "context"

type staticSource struct {
	named
	c Credentials
}

// Static returns a Source that always returns c. An empty c.Source becomes
// "static". A c without User or Password yields ErrInvalid on every call.
// There is deliberately no URI for it (see Open).
func Static(c Credentials) Source {
	if c.Source == "" {
		c.Source = "static"
	}
	return &staticSource{named: named{c.Source}, c: c}
}

// Credentials implements Source.
func (s *staticSource) Credentials(ctx context.Context) (Credentials, error) {
	if ctx.Err() != nil {
		return Credentials{}, ctxError(s.name, ctx)
	}
	if s.c.User == "" || s.c.Password.IsZero() {
		return Credentials{}, newError(ErrInvalid, s.name, "static credentials need both User and Password", nil)
	}
	return s.c, nil
}
