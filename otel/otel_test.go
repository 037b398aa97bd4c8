package pgsecureotel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	pgsecureotel "github.com/pgsecure/pgsecure/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const (
	appUser     = "app"
	appPassword = "Corr3ct-Horse-Battery"
	poolName    = "orders"
)

// telemetry is the real OpenTelemetry SDK with in-memory readers: a manual
// metric reader and a span recorder, no exporter or collector.
type telemetry struct {
	reader         *sdkmetric.ManualReader
	spans          *tracetest.SpanRecorder
	tracerProvider *sdktrace.TracerProvider
	opts           []pgsecureotel.Option
}

func newTelemetry(t *testing.T) *telemetry {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	return &telemetry{reader: reader, spans: rec, tracerProvider: tp,
		opts: []pgsecureotel.Option{pgsecureotel.WithMeterProvider(mp), pgsecureotel.WithTracerProvider(tp), pgsecureotel.WithPoolName(poolName)}}
}

func (tm *telemetry) instrument(b *pgsecure.Builder) *pgsecure.Builder {
	return pgsecureotel.Instrument(b, tm.opts...)
}

// collect reads every metric, keyed by name.
func (tm *telemetry) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tm.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, pgsecureotel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// ended returns the ended spans named name.
func (tm *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tm.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// counts sums a counter's data points by the values of the given attribute
// keys, joined with "|".
func counts(t *testing.T, data metricdata.Aggregation, keys ...attribute.Key) map[string]int64 {
	t.Helper()
	sum, ok := data.(metricdata.Sum[int64])
	require.True(t, ok, "an int64 counter, got %T", data)
	assert.True(t, sum.IsMonotonic)
	out := map[string]int64{}
	for _, dp := range sum.DataPoints {
		pool, _ := dp.Attributes.Value("db.client.connection.pool.name")
		assert.Equal(t, poolName, pool.AsString(), "every data point names the pool")
		out[attrKey(dp.Attributes, keys...)] += dp.Value
	}
	return out
}

func attrKey(set attribute.Set, keys ...attribute.Key) string {
	k := ""
	for i, key := range keys {
		v, _ := set.Value(key)
		if i > 0 {
			k += "|"
		}
		k += v.Emit()
	}
	return k
}

func histogramCount(t *testing.T, data metricdata.Aggregation) (n uint64, sum float64) {
	t.Helper()
	h, ok := data.(metricdata.Histogram[float64])
	require.True(t, ok, "a float64 histogram, got %T", data)
	for _, dp := range h.DataPoints {
		n += dp.Count
		sum += dp.Sum
	}
	return n, sum
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

func dsn(host string, port int) string {
	return testutil.Role{User: appUser, Password: appPassword}.DSN(host, port, "connect_timeout=10")
}

func ctxT(t *testing.T) context.Context { return testutil.Context(t, 60*time.Second) }

// server starts a real PostgreSQL 15 with TLS, a certificate for
// localhost and 127.0.0.1, and a scram-sha-256 role.
func server(t *testing.T) (*testutil.Postgres, *testutil.PKI, time.Time) {
	t.Helper()
	return serverFor(t, testutil.LocalServerOptions())
}

func serverFor(t *testing.T, o certgen.Options) (*testutil.Postgres, *testutil.PKI, time.Time) {
	t.Helper()
	pki := testutil.NewPKI(t)
	pg, pair := pki.StartServerWithRole(t, o, testutil.Role{User: appUser, Password: appPassword})
	return pg, pki, pair.Cert.NotAfter
}

// TestVerifiedAndRefusedConnections connects to a real PostgreSQL through
// instrumented builders: once verified, then refused for each of three
// reasons (a certificate from another CA, a server asking for a cleartext
// password, a peer answering 'N' to the TLS request), and reads what the
// OpenTelemetry SDK recorded.
func TestVerifiedAndRefusedConnections(t *testing.T) {
	pg, pki, notAfter := server(t)
	tm := newTelemetry(t)
	ctx := ctxT(t)

	pool, err := tm.instrument(pgsecure.NewBuilder(dsn("localhost", pg.Port)).RootCAFile(pki.CAFile).QueryServerEveryConnection()).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "SELECT 1")
	require.NoError(t, err)

	other := testutil.NewPKI(t)
	_, err = tm.instrument(pgsecure.NewBuilder(dsn("localhost", pg.Port)).RootCAFile(other.CAFile)).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)

	peer := testutil.AnswerN(t)
	_, err = tm.instrument(pgsecure.NewBuilder(dsn(peer.Host, peer.Port)).RootCAFile(pki.CAFile)).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Empty(t, peer.Passwords(), "nothing was sent to the peer that declined TLS")

	pg.SetHBA(t, "hostssl all all 127.0.0.1/32 password")
	_, err = tm.instrument(pgsecure.NewBuilder(dsn("127.0.0.1", pg.Port)).RootCAFile(pki.CAFile)).Build(ctx)
	require.Error(t, err)

	collectedAt := time.Now()
	m := tm.collect(t)
	after := time.Now()

	assert.Equal(t, map[string]int64{"localhost|server query": 1},
		counts(t, m["pgsecure.connections.verified"], "server.address", "pgsecure.proof"))
	assert.Equal(t, map[string]int64{
		"localhost|certificate|TLS handshake":  1,
		"127.0.0.1|plaintext|TLS request":      1,
		"127.0.0.1|auth_method|authentication": 1,
	}, counts(t, m["pgsecure.connections.refused"], "server.address", "pgsecure.refusal.kind", "pgsecure.refusal.stage"))

	n, sum := histogramCount(t, m["pgsecure.connection.handshake.duration"])
	assert.Equal(t, uint64(1), n, "one verified handshake")
	assert.Greater(t, sum, 0.0)
	n, sum = histogramCount(t, m["pgsecure.connection.server_check.duration"])
	assert.Equal(t, uint64(1), n, "QueryServerEveryConnection: the verified connection was queried")
	assert.Greater(t, sum, 0.0)

	gauge, ok := m["pgsecure.certificate.time_to_expiry"].(metricdata.Gauge[float64])
	require.True(t, ok, "a float64 gauge, got %T", m["pgsecure.certificate.time_to_expiry"])
	require.Len(t, gauge.DataPoints, 1, "one certificate seen on a verified connection: the refused ones are not in use")
	dp := gauge.DataPoints[0]
	assert.Equal(t, "server|localhost|orders", attrKey(dp.Attributes, "pgsecure.certificate.role", "server.address", "db.client.connection.pool.name"))
	subject, _ := dp.Attributes.Value("pgsecure.certificate.subject")
	assert.Contains(t, subject.AsString(), "CN=localhost")
	assert.GreaterOrEqual(t, dp.Value, notAfter.Sub(after).Seconds())
	assert.LessOrEqual(t, dp.Value, notAfter.Sub(collectedAt).Seconds())

	assertSpans(t, tm)
}

func assertSpans(t *testing.T, tm *telemetry) {
	t.Helper()
	byOutcome := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range tm.ended("pgsecure.connect") {
		a := spanAttrs(s)
		byOutcome[a["pgsecure.outcome"].AsString()+"/"+a["pgsecure.refusal.kind"].AsString()] = append(byOutcome[a["pgsecure.outcome"].AsString()+"/"+a["pgsecure.refusal.kind"].AsString()], s)
	}
	require.Len(t, byOutcome["verified/"], 1, "spans: %v", byOutcome)
	v := byOutcome["verified/"][0]
	a := spanAttrs(v)
	assert.Equal(t, "localhost", a["server.address"].AsString())
	assert.Equal(t, "server query", a["pgsecure.proof"].AsString())
	assert.Contains(t, []string{"1.2", "1.3"}, a["tls.protocol.version"].AsString())
	assert.Equal(t, "scram-sha-256", a["pgsecure.auth_method"].AsString())
	assert.Equal(t, poolName, a["db.client.connection.pool.name"].AsString())
	assert.Greater(t, a["pgsecure.handshake.duration"].AsFloat64(), 0.0)
	assert.Equal(t, codes.Unset, v.Status().Code)

	checks := tm.ended("pgsecure.server_check")
	require.Len(t, checks, 1)
	assert.Equal(t, v.SpanContext().SpanID(), checks[0].Parent().SpanID(), "the server check is a phase of the verified connect")
	assert.False(t, checks[0].StartTime().Before(v.StartTime()), "the server check starts within its connect")
	assert.False(t, checks[0].EndTime().After(v.EndTime()), "the server check ends within its connect")

	for _, kind := range []string{"certificate", "plaintext", "auth_method"} {
		spans := byOutcome["refused/"+kind]
		require.Len(t, spans, 1, "one span for the %s refusal; spans: %v", kind, byOutcome)
		s := spans[0]
		assert.Equal(t, codes.Error, s.Status().Code)
		assert.Equal(t, "refused: "+kind, s.Status().Description)
		var refused []string
		for _, ev := range s.Events() {
			if ev.Name == "pgsecure.refused" {
				refused = append(refused, fmt.Sprint(ev.Attributes))
			}
		}
		assert.Len(t, refused, 1, "the refusal is an event of its connect span")
		for _, ev := range s.Events() {
			for _, kv := range ev.Attributes {
				assert.NotContains(t, kv.Value.Emit(), appPassword)
			}
		}
	}
}

// TestRefusalBeforeDial: a refusal made before pgx dials (a BeforeConnect
// hook removed the TLS configuration) has no connect span to join, and gets
// a span of its own. No server is needed: nothing is dialled.
func TestRefusalBeforeDial(t *testing.T) {
	tm := newTelemetry(t)
	ctx := ctxT(t)
	b := tm.instrument(pgsecure.NewBuilder(dsn("localhost", 1)).RootCAFile(testutil.NewPKI(t).CAFile)).
		BeforeConnect(func(_ context.Context, cc *pgx.ConnConfig) error { cc.TLSConfig = nil; return nil })
	_, err := b.Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)

	assert.Equal(t, map[string]int64{"localhost|configuration": 1},
		counts(t, tm.collect(t)["pgsecure.connections.refused"], "server.address", "pgsecure.refusal.kind"))
	spans := tm.ended("pgsecure.connect")
	require.Len(t, spans, 1)
	a := spanAttrs(spans[0])
	assert.Equal(t, "refused", a["pgsecure.outcome"].AsString())
	assert.Equal(t, "configuration", a["pgsecure.refusal.kind"].AsString())
	assert.Equal(t, poolName, a["db.client.connection.pool.name"].AsString())
	assert.Equal(t, codes.Error, spans[0].Status().Code)
}

// TestRefusedHostThenVerified: with host=127.0.0.1,localhost and a
// certificate naming only localhost, the first host is refused and the
// second verified in one connect. The refusal carries the connect's
// context, so it is an event of that connect's span (pgx drops the first
// host's error; no error-matching is needed), and no other span is made.
func TestRefusedHostThenVerified(t *testing.T) {
	pg, pki, _ := serverFor(t, certgen.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	tm := newTelemetry(t)
	ctx := ctxT(t)
	url := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d,localhost:%d/postgres", appUser, appPassword, pg.Port, pg.Port)
	pool, err := tm.instrument(pgsecure.NewBuilder(url).RootCAFile(pki.CAFile)).Build(ctx)
	require.NoError(t, err)
	pool.Close()

	m := tm.collect(t)
	assert.Equal(t, map[string]int64{"127.0.0.1|certificate": 1},
		counts(t, m["pgsecure.connections.refused"], "server.address", "pgsecure.refusal.kind"))
	assert.Equal(t, map[string]int64{"localhost": 1}, counts(t, m["pgsecure.connections.verified"], "server.address"))

	spans := tm.ended("pgsecure.connect")
	require.Len(t, spans, 1, "one connect, one span")
	s := spans[0]
	assert.Equal(t, "verified", spanAttrs(s)["pgsecure.outcome"].AsString())
	var refused []map[attribute.Key]attribute.Value
	for _, ev := range s.Events() {
		if ev.Name == "pgsecure.refused" {
			a := map[attribute.Key]attribute.Value{}
			for _, kv := range ev.Attributes {
				a[kv.Key] = kv.Value
			}
			refused = append(refused, a)
		}
	}
	require.Len(t, refused, 1, "the first host's refusal is an event of the connect span")
	assert.Equal(t, "certificate", refused[0]["pgsecure.refusal.kind"].AsString())
	assert.Equal(t, "127.0.0.1", refused[0]["server.address"].AsString())
}

// TestFailedLoginsCounted: under a running pool, the role's password is
// rotated in the database (28P01), then pg_hba.conf rejects it (28000).
// Each failed login is counted by pgsecure.logins.failed with its SQLSTATE
// (a counter of its own: the server refused the credentials, pgsecure
// refused nothing, so pgsecure.connections.refused does not move), and its
// connect span says so. No attribute carries the password.
func TestFailedLoginsCounted(t *testing.T) {
	pg, pki, _ := server(t)
	tm := newTelemetry(t)
	ctx := ctxT(t)
	pool, err := tm.instrument(pgsecure.NewBuilder(dsn("localhost", pg.Port)).RootCAFile(pki.CAFile)).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	const rotated = "Rotated-In-The-Database-0"
	pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, rotated))
	pool.Reset()
	require.Error(t, pool.Ping(ctx))
	require.Error(t, pool.Ping(ctx))
	pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, appPassword))
	pg.SetHBA(t, "hostssl all all 127.0.0.1/32 reject", "hostssl all all ::1/128 reject")
	require.Error(t, pool.Ping(ctx))

	m := tm.collect(t)
	assert.Equal(t, map[string]int64{"localhost|28P01|": 2, "localhost|28000|": 1},
		counts(t, m["pgsecure.logins.failed"], "server.address", "db.response.status_code", "pgsecure.secret.source"))
	if refused, ok := m["pgsecure.connections.refused"]; ok {
		assert.Empty(t, counts(t, refused), "a failed login is not a pgsecure refusal")
	}

	var failed []sdktrace.ReadOnlySpan
	for _, s := range tm.ended("pgsecure.connect") {
		if spanAttrs(s)["pgsecure.outcome"].AsString() == "login_failed" {
			failed = append(failed, s)
		}
	}
	require.Len(t, failed, 3)
	for _, s := range failed {
		assert.Equal(t, codes.Error, s.Status().Code)
		assert.Contains(t, []string{"login failed: SQLSTATE 28P01", "login failed: SQLSTATE 28000"}, s.Status().Description)
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.Emit(), rotated)
			assert.NotContains(t, kv.Value.Emit(), appPassword)
		}
		for _, ev := range s.Events() {
			for _, kv := range ev.Attributes {
				assert.NotContains(t, kv.Value.Emit(), rotated)
				assert.NotContains(t, kv.Value.Emit(), appPassword)
			}
		}
	}
}
