package deployment

import (
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// agents makes agents of the given names, each in state st.
func agents(st model.AgentState, names ...string) []model.DeploymentAgent {
	var out []model.DeploymentAgent
	for _, n := range names {
		out = append(out, model.DeploymentAgent{Name: n, State: st})
	}
	return out
}

func TestChangeApply(t *testing.T) {
	whole := &model.Deployment{ID: "d-1", State: model.Preparing, Agents: agents(model.AgentPending, "a", "b", "c")}
	tests := []struct {
		name string
		c    Change
		d    *model.Deployment
		want *model.Deployment
	}{
		{"whole", Change{Deployment: whole}, &model.Deployment{ID: "d-1"}, whole},
		{"partial on nothing", Change{Deployment: &model.Deployment{ID: "d-1", Agents: agents(model.AgentStaging, "b")}, Partial: true}, nil,
			&model.Deployment{ID: "d-1", Agents: agents(model.AgentStaging, "b")}},
		{"an agent changed, the header too", Change{Deployment: &model.Deployment{ID: "d-1", State: model.Prepared, Agents: agents(model.AgentStaged, "b")}, Partial: true}, whole,
			&model.Deployment{ID: "d-1", State: model.Prepared, Agents: append(append(agents(model.AgentPending, "a"), agents(model.AgentStaged, "b")...), agents(model.AgentPending, "c")...)}},
		{"a new agent", Change{Deployment: &model.Deployment{ID: "d-1", State: model.Preparing, Agents: agents(model.AgentStaging, "late")}, Partial: true}, whole,
			&model.Deployment{ID: "d-1", State: model.Preparing, Agents: append(agents(model.AgentPending, "a", "b", "c"), agents(model.AgentStaging, "late")...)}},
	}
	for _, tt := range tests {
		var before *model.Deployment
		if tt.d != nil {
			before = &model.Deployment{ID: tt.d.ID, State: tt.d.State, Agents: append([]model.DeploymentAgent(nil), tt.d.Agents...)}
		}
		if got := tt.c.Apply(tt.d); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		if tt.d != nil && !reflect.DeepEqual(tt.d, before) {
			t.Errorf("%s: Apply modified the deployment it was given", tt.name)
		}
	}
}

func TestChangedAgents(t *testing.T) {
	prev := &model.Deployment{Agents: agents(model.AgentPending, "a", "b", "c")}
	d := &model.Deployment{Agents: append(append(agents(model.AgentPending, "a"), agents(model.AgentStaging, "b")...), agents(model.AgentPending, "c", "d")...)}
	tests := []struct {
		name    string
		prev, d *model.Deployment
		want    []string
	}{
		{"no previous", nil, d, []string{"a", "b", "c", "d"}},
		{"one changed, one new", prev, d, []string{"b", "d"}},
		{"none", d, d, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, a := range ChangedAgents(tt.prev, tt.d) {
			got = append(got, a.Name)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestOfferMerges: a watcher that has not taken a Change gets it merged
// with the next: whole if either was whole, with every agent either
// changed.
func TestOfferMerges(t *testing.T) {
	whole := Change{Deployment: &model.Deployment{ID: "d-1", State: model.Preparing, Agents: agents(model.AgentPending, "a", "b", "c")}}
	partial := func(st model.DeploymentState, as ...model.DeploymentAgent) Change {
		return Change{Deployment: &model.Deployment{ID: "d-1", State: st, Agents: as}, Partial: true}
	}
	tests := []struct {
		name   string
		offers []Change
		want   Change
	}{
		{"two partial", []Change{partial(model.Preparing, agents(model.AgentStaging, "a")...), partial(model.Prepared, agents(model.AgentStaged, "c", "a")...)},
			partial(model.Prepared, agents(model.AgentStaged, "a", "c")...)},
		{"whole, then partial", []Change{whole, partial(model.Prepared, agents(model.AgentStaged, "b")...)},
			Change{Deployment: &model.Deployment{ID: "d-1", State: model.Prepared, Agents: append(append(agents(model.AgentPending, "a"), agents(model.AgentStaged, "b")...), agents(model.AgentPending, "c")...)}}},
		{"partial, then whole", []Change{partial(model.Prepared, agents(model.AgentStaged, "b")...), whole}, whole},
	}
	for _, tt := range tests {
		ch := make(chan Change, 1)
		for _, c := range tt.offers {
			offer(ch, c)
		}
		if got := <-ch; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got.Deployment, tt.want.Deployment)
		}
	}
}
