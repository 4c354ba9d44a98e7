package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pigwf/pigwf/inventory"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// Validator is an activity input that checks itself (validate.go).
type Validator interface{ Validate() error }

// ErrInvalidInput is the type of the non-retryable error an activity fails with when its input
// breaks the inventory's rules: retrying the same input cannot help.
const ErrInvalidInput = "InvalidInput"

// ValidateInputs (as &ValidateInputs{}) is the worker interceptor that checks every activity's input before the
// activity runs: each argument that is a Validator is validated, and the first invalid one fails
// the activity at once, non-retryable, naming the fields. It lives outside workflow code, so
// workflow histories replay as before.
type ValidateInputs struct {
	interceptor.WorkerInterceptorBase
}

// InterceptActivity puts the check in front of the activity.
func (*ValidateInputs) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &validateInbound{}
	i.Next = next
	return i
}

type validateInbound struct {
	interceptor.ActivityInboundInterceptorBase
}

func (i *validateInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	for _, arg := range in.Args {
		v, ok := arg.(Validator)
		if !ok {
			continue
		}
		if err := v.Validate(); err != nil {
			msg := err.Error()
			var verr *inventory.ValidationError
			if errors.As(err, &verr) { // one line per problem reads badly in a failure: one line
				lines := make([]string, len(verr.Problems))
				for i, p := range verr.Problems {
					lines[i] = p.Error()
				}
				msg = strings.Join(lines, "; ")
			}
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"%s: the input breaks the inventory's rules, nothing was done (was the run started with a crafted input instead of `pigwf start`?): %s",
				activity.GetInfo(ctx).ActivityType.Name, msg), ErrInvalidInput, nil)
		}
	}
	return i.Next.ExecuteActivity(ctx, in)
}
