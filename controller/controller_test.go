package controller_test

import (
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller"
)

func TestRegistry(t *testing.T) {
	if names := controller.Names(); len(names) == 0 || names[0] == "" {
		t.Fatalf("Names() = %v", names)
	}
	space, _ := arch.New("nas", arch.Options{})
	_, err := controller.New("no-such", controller.Env{Space: space})
	if err == nil || !strings.Contains(err.Error(), "random") || !strings.Contains(err.Error(), `"no-such"`) {
		t.Fatalf("unknown strategy: %v, want an error naming it and listing random", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering random twice does not panic")
		}
	}()
	controller.Register("random", func(controller.Env) (controller.Strategy, error) { return nil, nil })
}
