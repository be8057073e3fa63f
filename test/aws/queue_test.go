package aws

import (
	"testing"
	"time"

	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/queuetest"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/test/awsendpoint"
)

// SQS counts visibility in whole seconds: one second keeps the suite quick.
const queueVisibility = time.Second

func TestQueueContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Queue {
		return sqsq.New(awsendpoint.Config(t), sqsq.Options{Visibility: queueVisibility})
	}, queuetest.Options{Visibility: queueVisibility, MaxReceives: queue.DefaultMaxReceives})
}
