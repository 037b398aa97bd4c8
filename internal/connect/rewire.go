package connect

import (
	"reflect"

	"github.com/jackc/pgx/v5/pgconn"
)

// frontendStageCode identifies a frontend stage's buildFrontend method
// value: every method value of one method shares its code pointer.
var frontendStageCode = reflect.ValueOf((&frontendStage{}).buildFrontend).Pointer()

// ensureFrontend puts a frontend stage (the authentication watch) back
// around cfg.BuildFrontend when a caller replaced it on a configuration
// whose pool BeforeConnect, which re-installs every stage, was replaced
// too. cfg is the configuration pgx connects with, a per-connection copy
// under pgxpool, so the stage is added at most once per connection; a
// caller's frontend that calls pgsecure's gets no second watch (the stage
// notices an outer one).
func (s *localStage) ensureFrontend(cfg *pgconn.Config) {
	if cfg == nil || cfg.BuildFrontend == nil || reflect.ValueOf(cfg.BuildFrontend).Pointer() == frontendStageCode {
		return
	}
	cfg.BuildFrontend = (&frontendStage{policy: s.policy, next: cfg.BuildFrontend}).buildFrontend
}
