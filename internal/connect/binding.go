package connect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgsecure/pgsecure/verify"
)

// mechanismPlus is the SASL mechanism of SCRAM bound to the TLS channel.
const mechanismPlus = "SCRAM-SHA-256-PLUS"

// The authentication watch holds channel_binding=require itself, whatever
// the connection's ChannelBinding says by the time pgx reads it: a server
// that does not offer SCRAM-SHA-256-PLUS, or a client about to choose
// another mechanism, is refused before any SCRAM message (and so before the
// client proof, which an unbound exchange exposes to offline guessing).

// checkBindingOffered refuses an authentication request that cannot be
// bound to the channel when the policy requires binding. body is the
// request after its code (for SASL: the mechanisms offered).
func (w *authWatch) checkBindingOffered(method verify.AuthMethod, body []byte) error {
	if !w.policy.Auth.ChannelBindingRequired() {
		return nil
	}
	what := fmt.Sprintf("the server asked for %s authentication, which cannot be bound to the TLS channel", method)
	if method == verify.AuthSCRAM {
		offered := strings.Split(strings.TrimRight(string(body), "\x00"), "\x00")
		if slices.Contains(offered, mechanismPlus) {
			return nil
		}
		what = fmt.Sprintf("the server offered only the SASL mechanisms %s, not %s", strings.Join(offered, ", "), mechanismPlus)
	}
	return w.refuseUnbound(what)
}

// checkChosenMechanism refuses the client's SASLInitialResponse when it
// chose a mechanism other than SCRAM-SHA-256-PLUS under a policy requiring
// binding (pgx's ChannelBinding was lowered, or the TLS connection is hidden
// from it). It is called before the message is written.
func (w *authWatch) checkChosenMechanism() error {
	if !w.policy.Auth.ChannelBindingRequired() || w.mech == mechanismPlus {
		return nil
	}
	return w.refuseUnbound(fmt.Sprintf("the client was about to use %s instead of %s (ConnConfig.ChannelBinding was changed, or a hook hid the TLS connection)", w.mech, mechanismPlus))
}

// checkBound refuses an AuthenticationOk that ends an exchange not bound to
// the channel under a policy requiring binding.
func (w *authWatch) checkBound() error {
	if !w.policy.Auth.ChannelBindingRequired() || w.bound {
		return nil
	}
	if w.method == verify.AuthNone {
		return w.refuseUnbound("the server let the client in without any authentication")
	}
	return w.refuseUnbound(fmt.Sprintf("the %s exchange (mechanism %q) was not bound to the TLS channel", w.method, w.mech))
}

func (w *authWatch) refuseUnbound(what string) error {
	return w.refused(&verify.AuthMethodError{Method: w.method,
		Problem: fmt.Sprintf("channel binding required (channel_binding=require or Builder.RequireChannelBinding), but %s; nothing more was sent", what),
		Fix: fmt.Sprintf("the server must offer %s: PostgreSQL 11 or later with scram-sha-256 in pg_hba.conf, the role's "+
			"password stored as SCRAM, and TLS terminated by the server itself, not by a proxy or pooler in front of it; "+
			"or, knowingly, drop the requirement", mechanismPlus)})
}
