package connect

import (
	"reflect"

	"github.com/jackc/pgx/v5/pgconn"
)

// frontendStageCode identifies a frontend stage's buildFrontend method
// value: every method value of one method shares its code pointer.
var frontendStageCode = reflect.ValueOf((&frontendStage{}).buildFrontend).Pointer()

// ensureFrontend puts a frontend stage (the authentication watch) back
// around cfg.BuildFrontend when a caller replaced it on what Config
// returned and replaced the pool's BeforeConnect too, which would otherwise
// install the stages again. The outermost local stage calls it, after the
// rest of AfterNetConnect, only when no other local stage saw the attempt:
// when the stages were installed again (by BeforeConnect, on the copy pgx
// connects with), the frontend stage is in cfg's chain already, possibly
// inside a frontend a caller wrapped around it afterwards to observe what
// the watch refuses (pgsecure's CLI does), and nothing changes. cfg is the
// copy of the configuration pgx connects with, so the stage is added for
// this connection only.
func (s *localStage) ensureFrontend(cfg *pgconn.Config) {
	if cfg == nil || cfg.BuildFrontend == nil || reflect.ValueOf(cfg.BuildFrontend).Pointer() == frontendStageCode {
		return
	}
	cfg.BuildFrontend = (&frontendStage{policy: s.policy, next: cfg.BuildFrontend}).buildFrontend
}
