package pgsecure_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxySetup is a real PostgreSQL 15 whose certificate is issued by the
// pinned CA for localhost, which accepts SCRAM over TLS and (for the proxy
// rows that forward in plaintext) without it, and a second certificate from
// the same CA for the same name: the one a hostile proxy presents. The
// client trusts both.
type proxySetup struct {
	pg        *testutil.Postgres
	pki       *testutil.PKI
	proxyCert tls.Certificate
	upTLS     *tls.Config // the proxy's own verify-full session to the server
}

func newProxySetup(t *testing.T) *proxySetup {
	t.Helper()
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{
		"hostssl all all 127.0.0.1/32 scram-sha-256",
		"hostnossl all all 127.0.0.1/32 scram-sha-256",
	}})
	pg.CreateRole(t, appUser, appPassword)
	_, _, pair := pki.Server(t, testutil.LocalServerOptions())
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(pki.CA.Cert)
	return &proxySetup{pg: pg, pki: pki, proxyCert: cert, upTLS: &tls.Config{ServerName: "localhost", RootCAs: roots, MinVersion: tls.VersionTLS12}}
}

// route fills in where o relays to: the server over the proxy's own TLS
// session, or in plaintext.
func (s *proxySetup) route(o testutil.SCRAMProxyOptions, plaintext bool) testutil.SCRAMProxyOptions {
	o.Upstream = s.pg.Addr()
	if !plaintext {
		o.UpstreamTLS = s.upTLS
	}
	return o
}

func proxyDSN(p *testutil.SCRAMProxy) string {
	return fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres?connect_timeout=10", appUser, appPassword, p.Port)
}

// assertProxyLearnedNoPassword: the proxy read the client's SCRAM messages
// in the clear, and the password was in none of them, nor on the wire.
func assertProxyLearnedNoPassword(t *testing.T, p *testutil.SCRAMProxy) {
	t.Helper()
	require.Contains(t, string(p.Decrypted()), testutil.SCRAMSHA256, "the proxy decrypted the client's SASL messages")
	assert.False(t, bytes.Contains(p.Decrypted(), []byte(appPassword)), "the password is not in what the proxy decrypted")
	assert.False(t, bytes.Contains(p.Wire(), []byte(appPassword)), "the password is not on the wire")
	assert.Empty(t, p.Passwords())
}

// proxyRow is one hostile rewrite of the SCRAM exchange.
type proxyRow struct {
	name      string
	opts      testutil.SCRAMProxyOptions
	plaintext bool // the proxy forwards to the server without TLS
	// chosen and gs2 are what pgx sends, before any rewriting.
	chosen, gs2 string
	// sqlstate and message are the server's refusal; sqlstate is "" when
	// the server lets the client in and pgsecure refuses (ErrNotEncrypted)
	// because the server reports ssl=false.
	sqlstate, message string
}

// hostileRows: why each row is refused, and by whom.
var hostileRows = []proxyRow{
	// The client binds to the proxy's certificate; the server compares the
	// binding with the hash of its own certificate: "SCRAM channel binding
	// check failed" (28000).
	{name: "relay unchanged", chosen: testutil.SCRAMSHA256Plus, gs2: testutil.GS2Bound, sqlstate: "28000",
		message: "SCRAM channel binding check failed"},
	// The binding now matches the server's certificate (the server gets
	// past its binding check: no 28000), but c= is part of the AuthMessage
	// the client's proof signs: the proof does not verify, "password
	// authentication failed" (28P01).
	{name: "binding replaced by the server's", opts: testutil.SCRAMProxyOptions{BindUpstream: true},
		chosen: testutil.SCRAMSHA256Plus, gs2: testutil.GS2Bound, sqlstate: "28P01", message: "password authentication failed"},
	// Not offered PLUS, the client says "y" (it could bind); a TLS server
	// refuses "y": "SCRAM channel binding negotiation error" (28000).
	{name: "PLUS stripped", opts: testutil.SCRAMProxyOptions{StripPlus: true},
		chosen: testutil.SCRAMSHA256, gs2: testutil.GS2Capable, sqlstate: "28000", message: "SCRAM channel binding negotiation error"},
	// The client-final's c=eSws ("y,,") no longer matches the "n" the
	// server got: "unexpected SCRAM channel-binding attribute" (08P01).
	{name: "PLUS stripped, y rewritten to n", opts: testutil.SCRAMProxyOptions{StripPlus: true, GS2Header: testutil.GS2None},
		chosen: testutil.SCRAMSHA256, gs2: testutil.GS2Capable, sqlstate: "08P01", message: "unexpected SCRAM channel-binding attribute"},
	// Consistent for the server, but c= is inside the signed AuthMessage:
	// the proof does not verify (28P01).
	{name: "PLUS stripped, y to n, c=eSws to c=biws", opts: testutil.SCRAMProxyOptions{StripPlus: true, GS2Header: testutil.GS2None, Binding: "biws"},
		chosen: testutil.SCRAMSHA256, gs2: testutil.GS2Capable, sqlstate: "28P01", message: "password authentication failed"},
	// The client's PLUS choice downgraded in flight to an unbound exchange:
	// the proof covers c= (28P01).
	{name: "client's PLUS choice downgraded", opts: testutil.SCRAMProxyOptions{Mechanism: testutil.SCRAMSHA256, GS2Header: testutil.GS2None, Binding: "biws"},
		chosen: testutil.SCRAMSHA256Plus, gs2: testutil.GS2Bound, sqlstate: "28P01", message: "password authentication failed"},
	// A plaintext backend never accepts PLUS: "client selected an invalid
	// SASL authentication mechanism" (08P01).
	{name: "plaintext upstream, PLUS advertised", plaintext: true, opts: testutil.SCRAMProxyOptions{AdvertisePlus: true},
		chosen: testutil.SCRAMSHA256Plus, gs2: testutil.GS2Bound, sqlstate: "08P01", message: "invalid SASL authentication mechanism"},
	// As above, the choice downgraded in flight: the proof covers c= (28P01).
	{name: "plaintext upstream, PLUS advertised, choice downgraded", plaintext: true,
		opts:   testutil.SCRAMProxyOptions{AdvertisePlus: true, Mechanism: testutil.SCRAMSHA256, GS2Header: testutil.GS2None, Binding: "biws"},
		chosen: testutil.SCRAMSHA256Plus, gs2: testutil.GS2Bound, sqlstate: "28P01", message: "password authentication failed"},
	// A plaintext backend offers no PLUS and accepts "y": the login
	// succeeds, so no binding proves anything and pgsecure queries the
	// server, which reports ssl=false (ErrNotEncrypted).
	{name: "plaintext upstream, relayed", plaintext: true, chosen: testutil.SCRAMSHA256, gs2: testutil.GS2Capable},
}

// TestHostileSCRAMProxyRefused: a proxy with a certificate the client
// trusts, in front of a real server, rewrites the SCRAM exchange step by
// step. Every step is refused, both for Build's startup connection (always
// queried) and for a later connection of a pool built on the honest path
// (proven by channel binding unless it fails): the attacker takes over the
// path after startup.
func TestHostileSCRAMProxyRefused(t *testing.T) {
	t.Parallel()
	s := newProxySetup(t)
	for _, row := range hostileRows {
		t.Run(row.name, func(t *testing.T) {
			ctx := ctxT(t)
			p := testutil.StartSCRAMProxy(t, s.proxyCert, s.route(row.opts, row.plaintext))
			builder := pgsecure.NewBuilder(proxyDSN(p)).RootCAFile(s.pki.CAFile)

			_, err := builder.Build(ctx)
			assertProxyRefusal(t, row, err)

			p.Reroute(t, testutil.SCRAMProxyOptions{Upstream: s.pg.Addr(), Passthrough: true})
			pool, err := builder.Build(ctx)
			require.NoError(t, err, "the honest path (TLS end to end) is accepted")
			defer pool.Close()
			pool.Reset() // the next Acquire dials: a connection that is not Build's startup one
			honest := report(t, ctx, pool)
			require.Equal(t, verify.ProofChannelBinding, honest.Proof, "later connections rely on channel binding")

			p.Reroute(t, s.route(row.opts, row.plaintext))
			pool.Reset()
			c, err := pool.Acquire(ctx)
			if err == nil {
				c.Release()
			}
			assertProxyRefusal(t, row, err)

			ex := p.Exchanges()
			require.Len(t, ex, 2, "one exchange through the proxy per refused connection, none retried")
			for _, e := range ex {
				assertRewritten(t, row, e)
			}
			assertProxyLearnedNoPassword(t, p)
		})
	}
}

func assertProxyRefusal(t *testing.T, row proxyRow, err error) {
	t.Helper()
	require.Error(t, err)
	if row.sqlstate != "" {
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, "the server refused the exchange")
		assert.Equal(t, row.sqlstate, pgErr.Code, "%v", err)
		return
	}
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "ssl=false")
}

// assertRewritten checks that the client spoke as expected, that the proxy
// made each rewrite of the row, and that the server gave the row's answer.
func assertRewritten(t *testing.T, row proxyRow, e testutil.SCRAMExchange) {
	t.Helper()
	o := row.opts
	assert.Equal(t, row.chosen, e.Chosen, "the client's mechanism")
	assert.Equal(t, row.gs2, e.GS2, "the client's GS2 header")
	assert.Equal(t, o.StripPlus || o.AdvertisePlus, !slices.Equal(e.Offered, e.Advertised), "mechanism list rewritten: %v -> %v", e.Offered, e.Advertised)
	if o.StripPlus {
		assert.Contains(t, e.Offered, testutil.SCRAMSHA256Plus)
		assert.NotContains(t, e.Advertised, testutil.SCRAMSHA256Plus)
	}
	if o.AdvertisePlus {
		assert.NotContains(t, e.Offered, testutil.SCRAMSHA256Plus, "a plaintext backend offers no PLUS")
		assert.Contains(t, e.Advertised, testutil.SCRAMSHA256Plus)
	}
	assert.Equal(t, o.Mechanism != "", e.Chosen != e.Forwarded, "mechanism rewritten: %s -> %s", e.Chosen, e.Forwarded)
	assert.Equal(t, o.GS2Header != "", e.GS2 != e.GS2Forwarded, "GS2 header rewritten: %s -> %s", e.GS2, e.GS2Forwarded)
	assert.Equal(t, o.Binding != "" || o.BindUpstream, e.Binding != e.BindingForwarded, "c= rewritten: %s -> %s", e.Binding, e.BindingForwarded)
	bound := base64.StdEncoding.EncodeToString([]byte(testutil.GS2Bound)) // 24 bytes, whole base64 groups: a prefix of c=
	if o.BindUpstream {
		assert.True(t, strings.HasPrefix(e.Binding, bound) && strings.HasPrefix(e.BindingForwarded, bound), "both bind with tls-server-end-point")
	}
	want := row.sqlstate
	if want == "" {
		want = "ok"
	}
	assert.Equal(t, want, e.Outcome, "the server's answer: %s", e.Message)
	assert.Contains(t, e.Message, row.message)
}

// TestRequireChannelBindingRefusesStrippedPlus: with RequireChannelBinding
// the client itself refuses a server that does not offer PLUS, before it
// sends any SCRAM message.
func TestRequireChannelBindingRefusesStrippedPlus(t *testing.T) {
	t.Parallel()
	s := newProxySetup(t)
	p := testutil.StartSCRAMProxy(t, s.proxyCert, s.route(testutil.SCRAMProxyOptions{StripPlus: true}, false))
	_, err := pgsecure.NewBuilder(proxyDSN(p)).RootCAFile(s.pki.CAFile).RequireChannelBinding().Build(ctxT(t))
	require.ErrorContains(t, err, "channel binding required")
	ex := p.Exchanges()
	require.Len(t, ex, 1)
	assert.Contains(t, ex[0].Offered, testutil.SCRAMSHA256Plus)
	assert.Empty(t, ex[0].Chosen, "no SASLInitialResponse was sent")
	assert.False(t, bytes.Contains(p.Decrypted(), []byte(appPassword)))
}

// TestReterminatingProxyPassesServerQuery is the control: raw pgx with
// channel_binding=disable logs in through the relaying proxy (its
// certificate is trusted), and the server's pg_stat_ssl says ssl=t, since
// its own hop is TLS. A query-only check would have accepted this
// connection; channel binding is what refuses it (raw pgx's default,
// prefer, through the same proxy is refused by the server).
func TestReterminatingProxyPassesServerQuery(t *testing.T) {
	t.Parallel()
	s := newProxySetup(t)
	ctx := ctxT(t)
	p := testutil.StartSCRAMProxy(t, s.proxyCert, s.route(testutil.SCRAMProxyOptions{}, false))
	rawDSN := proxyDSN(p) + "&sslmode=verify-full&sslrootcert=" + s.pki.CAFile

	conn, err := pgx.Connect(ctx, rawDSN+"&channel_binding=disable")
	require.NoError(t, err, "the proxy relays a login that is not bound to the channel")
	defer conn.Close(ctx)
	ssl, version := serverSaysSSL(t, ctx, conn)
	assert.True(t, ssl, "the server sees TLS on its own hop (the proxy's)")
	assert.Equal(t, "TLSv1.3", version)
	peer := conn.PgConn().Conn().(*tls.Conn).ConnectionState().PeerCertificates[0]
	assert.True(t, bytes.Equal(peer.Raw, s.proxyCert.Certificate[0]), "the client holds the proxy's certificate, not the server's")

	_, err = pgx.Connect(ctx, rawDSN)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "bound to the proxy's certificate, the same login is refused by the server")
	assert.Equal(t, "28000", pgErr.Code)
	assert.Contains(t, pgErr.Message, "SCRAM channel binding check failed")

	ex := p.Exchanges()
	require.Len(t, ex, 2)
	assert.Equal(t, []string{testutil.SCRAMSHA256, testutil.GS2None, "ok"}, []string{ex[0].Chosen, ex[0].GS2, ex[0].Outcome})
	assert.Equal(t, []string{testutil.SCRAMSHA256Plus, testutil.GS2Bound, "28000"}, []string{ex[1].Chosen, ex[1].GS2, ex[1].Outcome})
	assertProxyLearnedNoPassword(t, p)
}

// TestChannelBindingDisableCannotDetectReterminatingProxy pins what
// channel_binding=disable gives up: through the relaying proxy the login is
// unbound, the server's own hop is TLS, so the server query passes and the
// connection is accepted. pgsecure warns when the setting is read, and the
// report says the connection was not bound (ChannelBound is false), so an
// operator can see it.
func TestChannelBindingDisableCannotDetectReterminatingProxy(t *testing.T) {
	t.Parallel()
	s := newProxySetup(t)
	ctx := ctxT(t)
	p := testutil.StartSCRAMProxy(t, s.proxyCert, s.route(testutil.SCRAMProxyOptions{}, false))
	var logs bytes.Buffer
	pool, err := pgsecure.NewBuilder(proxyDSN(p) + "&channel_binding=disable").RootCAFile(s.pki.CAFile).
		Logger(slog.New(slog.NewTextHandler(&logs, nil))).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	assert.Contains(t, logs.String(), "channel_binding=disable: SCRAM will not be bound to the TLS channel")
	pool.Reset()
	r := report(t, ctx, pool)
	assert.Equal(t, verify.ProofServerQuery, r.Proof)
	assert.False(t, r.ChannelBound())
	assert.True(t, r.Server.SSL, "the server's hop is the proxy's TLS session")
	ex := p.Exchanges()
	require.Len(t, ex, 2)
	for _, e := range ex {
		assert.Equal(t, []string{testutil.SCRAMSHA256, testutil.GS2None, "ok"}, []string{e.Chosen, e.GS2, e.Outcome})
	}
	assertProxyLearnedNoPassword(t, p)
}
