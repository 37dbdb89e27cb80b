package breaker

import (
	"errors"

	"github.com/leadpipe/leadpipe/common/failure"
)

func asFailure(err error, fe **failure.Error) bool { return errors.As(err, fe) }
