package stages

import "github.com/straas/straas/shared/workflow"

// configFunctions are the stages of configuration changes and upgrades
// (statemachines/config_change.asl.json).
func (e *Env) configFunctions() map[string]workflow.Func {
	return map[string]workflow.Func{
		"ConfigChangePlan":     Typed(e.ConfigChangePlan),
		"ConfigChangeCommand":  Typed(e.ConfigChangeCommand),
		"ConfigChangeNodeDone": Typed(e.ConfigChangeNodeDone),
		"ConfigChangeFinish":   Typed(e.ConfigChangeFinish),
		"ConfigChangeFailed":   Typed(e.ConfigChangeFailed),
	}
}
