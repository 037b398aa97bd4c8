package pgsecureotel

import (
	"context"
	"sync"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/verify"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Attribute keys pgsecure adds to OpenTelemetry's semantic conventions.
const (
	keyRefusalKind  = attribute.Key("pgsecure.refusal.kind")
	keyRefusalStage = attribute.Key("pgsecure.refusal.stage")
	keyProof        = attribute.Key("pgsecure.proof")
	keySource       = attribute.Key("pgsecure.secret.source")
	keyCertRole     = attribute.Key("pgsecure.certificate.role")
	keyCertSubject  = attribute.Key("pgsecure.certificate.subject")
	keyCertSerial   = attribute.Key("pgsecure.certificate.serial")
	keyServerAddr   = attribute.Key("server.address")
	keyStatusCode   = attribute.Key("db.response.status_code")
)

// latencyBuckets suit a connection on a LAN or in a region (ms) up to one
// across continents or a server under load (s).
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type metrics struct {
	pool []attribute.KeyValue

	verified, refused             metric.Int64Counter
	handshake, serverCheck        metric.Float64Histogram
	secretFetches, secretFailures metric.Int64Counter
	loginFailures                 metric.Int64Counter
	certs                         *expiryGauge
}

func newMetrics(m metric.Meter, pool []attribute.KeyValue) *metrics {
	noops := noop.NewMeterProvider().Meter(ScopeName)
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			otel.Handle(err)
			c, _ = noops.Int64Counter(name)
		}
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(latencyBuckets...))
		if err != nil {
			otel.Handle(err)
			h, _ = noops.Float64Histogram(name)
		}
		return h
	}
	ms := &metrics{
		pool: pool,
		verified: counter("pgsecure.connections.verified", "{connection}",
			"New connections verified from both ends (TLS verify-full before any credential, then the server's proof)."),
		refused: counter("pgsecure.connections.refused", "{connection}",
			"New connections refused by pgsecure, by refusal kind (plaintext: the connection would not have been encrypted)."),
		handshake: histogram("pgsecure.connection.handshake.duration",
			"Time from the TCP connection to a verified TLS handshake."),
		serverCheck: histogram("pgsecure.connection.server_check.duration",
			"Time the server took to describe the connection (pg_stat_ssl), for connections that were queried."),
		loginFailures: counter("pgsecure.logins.failed", "{login}",
			"New connections whose login the server rejected (SQLSTATE 28P01: password or user; 28000: pg_hba.conf or authorization), by SQLSTATE (db.response.status_code)."),
		secretFetches: counter("pgsecure.secret.fetches", "{fetch}",
			"Credentials of a new generation fetched from the credential source."),
		secretFailures: counter("pgsecure.secret.failures", "{failure}",
			"Failed fetches from the credential source."),
		certs: &expiryGauge{pool: pool, certs: map[certKey]certEntry{}},
	}
	g, err := m.Float64ObservableGauge("pgsecure.certificate.time_to_expiry", metric.WithUnit("s"),
		metric.WithDescription("Seconds until the certificate's NotAfter (negative once expired), for the server certificate last seen per host and the client certificate last presented."))
	if err == nil {
		_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			ms.certs.observe(o, g)
			return nil
		}, g)
	}
	if err != nil {
		otel.Handle(err)
	}
	return ms
}

// record counts one event.
func (m *metrics) record(ctx context.Context, ev pgsecure.Event) {
	switch ev := ev.(type) {
	case pgsecure.ConnectionVerified:
		host := m.with(keyServerAddr.String(ev.Host))
		m.certs.saw(ev.Host, ev.Report)
		m.verified.Add(ctx, 1, metric.WithAttributes(append(host, keyProof.String(string(ev.Report.Proof)))...))
		if ev.Handshake > 0 {
			m.handshake.Record(ctx, ev.Handshake.Seconds(), metric.WithAttributes(host...))
		}
		if ev.ServerCheck > 0 {
			m.serverCheck.Record(ctx, ev.ServerCheck.Seconds(), metric.WithAttributes(host...))
		}
	case pgsecure.ConnectionRefused:
		m.refused.Add(ctx, 1, metric.WithAttributes(m.with(keyServerAddr.String(ev.Host),
			keyRefusalKind.String(string(ev.Refusal)), keyRefusalStage.String(string(ev.Stage)))...))
	case pgsecure.LoginFailed:
		attrs := m.with(keyServerAddr.String(ev.Host), keyStatusCode.String(ev.SQLState))
		if ev.Source != "" { // empty: the password came from the connection string
			attrs = append(attrs, keySource.String(ev.Source))
		}
		m.loginFailures.Add(ctx, 1, metric.WithAttributes(attrs...))
	case pgsecure.SecretFetched:
		m.secretFetches.Add(ctx, 1, metric.WithAttributes(m.with(keySource.String(ev.Source))...))
	case pgsecure.SecretFailed:
		m.secretFailures.Add(ctx, 1, metric.WithAttributes(m.with(keySource.String(ev.Source))...))
	}
}

// with returns the pool attribute followed by kvs, in a new slice.
func (m *metrics) with(kvs ...attribute.KeyValue) []attribute.KeyValue {
	return append(append(make([]attribute.KeyValue, 0, len(m.pool)+len(kvs)+1), m.pool...), kvs...)
}

// expiryGauge remembers the certificates seen on verified connections: per
// host the server's last certificate, and the client certificate last
// presented, so that a renewed certificate replaces the one it renews.
type expiryGauge struct {
	pool []attribute.KeyValue

	mu    sync.Mutex
	certs map[certKey]certEntry
}

type certKey struct{ role, host string }

type certEntry struct {
	notAfter time.Time
	attrs    attribute.Set
}

func (g *expiryGauge) saw(host string, r verify.Report) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if leaf := r.Leaf(); !leaf.NotAfter.IsZero() {
		g.certs[certKey{"server", host}] = g.entry(leaf, keyCertRole.String("server"), keyServerAddr.String(host))
	}
	if c := r.ClientCertificate; c != nil && !c.NotAfter.IsZero() {
		g.certs[certKey{"client", ""}] = g.entry(*c, keyCertRole.String("client"))
	}
}

func (g *expiryGauge) entry(c verify.Certificate, kvs ...attribute.KeyValue) certEntry {
	kvs = append(append(kvs, g.pool...), keyCertSubject.String(c.Subject), keyCertSerial.String(c.SerialNumber))
	return certEntry{notAfter: c.NotAfter, attrs: attribute.NewSet(kvs...)}
}

func (g *expiryGauge) observe(o metric.Observer, gauge metric.Float64ObservableGauge) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.certs {
		o.ObserveFloat64(gauge, e.notAfter.Sub(now).Seconds(), metric.WithAttributeSet(e.attrs))
	}
}
