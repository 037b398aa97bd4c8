package pgsecureotel_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	pgsecureotel "github.com/pgsecure/pgsecure/otel"
)

// A service instruments its Builder before Build. Metrics and spans go to
// the global providers the service set up (otel.SetMeterProvider,
// otel.SetTracerProvider); a tracer the pool already has is kept.
func ExampleInstrument() {
	b := pgsecure.NewBuilder(os.Getenv("DATABASE_URL")).
		RootCAFile("/etc/ssl/db-ca.crt").
		ConfigurePool(func(c *pgxpool.Config) {
			c.MaxConns = 8
			// c.ConnConfig.Tracer = otelpgx.NewTracer() // kept: pgsecure's connect span becomes its child
		})
	pool, err := pgsecureotel.Instrument(b, pgsecureotel.WithPoolName("orders")).Build(context.Background())
	if err != nil {
		log.Fatal(err) // the refusal was counted too: pgsecure.connections.refused{pgsecure.refusal.kind=...}
	}
	defer pool.Close()
}
