// Package sqsq is the queue.Queue adapter on Amazon SQS. Each port queue is an SQS
// standard queue of the same name with a dead-letter queue (queue.DeadLetter) that takes
// a message after queue.DefaultMaxReceives receives; queue URLs are looked up once and
// cached; receives long-poll; sends and acks go in batches of ten.
package sqsq

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// sqsAPI is the part of the SQS client the adapter uses.
type sqsAPI interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	DeleteQueue(ctx context.Context, in *sqs.DeleteQueueInput, optFns ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	SetQueueAttributes(ctx context.Context, in *sqs.SetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// SQS limits the adapter works within.
const (
	MaxNameLen   = 80 - len("-dlq") // a queue's dead-letter queue name must fit SQS's 80
	MaxBatchSize = 256 * 1024       // bytes of bodies and attributes in one SendMessageBatch
	MaxWait      = 20 * time.Second // longest WaitTimeSeconds of one ReceiveMessage
	dlqRetention = 14 * 24 * time.Hour
)

// encAttr marks a body sent base64-encoded because SQS accepts only XML characters
// (and no empty body); the receiving side decodes it, so any bytes round-trip.
const (
	encAttr   = "straas-enc"
	encBase64 = "base64"
)

// Options tune a Queue.
type Options struct {
	Visibility  time.Duration // visibility timeout of created queues; default queue.DefaultVisibility
	MaxReceives int           // receives before a message moves to the DLQ; default queue.DefaultMaxReceives
}

// Queue is a queue.Queue on SQS.
type Queue struct {
	api sqsAPI
	o   Options

	mu   sync.Mutex
	urls map[string]string // queue name -> URL
}

var _ queue.Queue = (*Queue)(nil)

// New returns a Queue on the endpoint of cfg. It sends no request.
func New(cfg aws.Config, o Options) *Queue { return newQueue(sqs.NewFromConfig(cfg), o) }

func newQueue(api sqsAPI, o Options) *Queue {
	if o.Visibility <= 0 {
		o.Visibility = queue.DefaultVisibility
	}
	if o.MaxReceives <= 0 {
		o.MaxReceives = queue.DefaultMaxReceives
	}
	return &Queue{api: api, o: o, urls: map[string]string{}}
}

// URL returns the queue's URL (what a Step Functions sqs:sendMessage task names), or an
// errs.NotFound error.
func (q *Queue) URL(ctx context.Context, name string) (string, error) {
	q.mu.Lock()
	u, ok := q.urls[name]
	q.mu.Unlock()
	if ok {
		return u, nil
	}
	if err := validName(name); err != nil {
		return "", err
	}
	out, err := q.api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &name})
	if err != nil {
		return "", apiError("queue "+name, err)
	}
	q.remember(name, aws.ToString(out.QueueUrl))
	return aws.ToString(out.QueueUrl), nil
}

// ARN returns the queue's ARN (for an SNS subscription or a redrive policy).
func (q *Queue) ARN(ctx context.Context, name string) (string, error) {
	u, err := q.URL(ctx, name)
	if err != nil {
		return "", err
	}
	out, err := q.api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &u, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", q.fail("queue "+name, name, err)
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", errs.E(errs.Other, "queue "+name, "no QueueArn attribute")
	}
	return arn, nil
}

func (q *Queue) remember(name, url string) {
	q.mu.Lock()
	q.urls[name] = url
	q.mu.Unlock()
}

func (q *Queue) forget(name string) {
	q.mu.Lock()
	delete(q.urls, name)
	q.mu.Unlock()
}

// fail maps err and, when the queue is gone, drops its cached URL (someone else removed it).
func (q *Queue) fail(op, name string, err error) error {
	err = apiError(op, err)
	if errs.Is(err, errs.NotFound) {
		q.forget(name)
	}
	return err
}

func validName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return errs.Invalidf("queue", "name %q: want 1 to %d characters", name, MaxNameLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return errs.Invalidf("queue", "name %q: SQS allows only letters, digits, '-' and '_'", name)
		}
	}
	return nil
}

// Ensure creates the queue and its dead-letter queue, or brings existing ones to the
// configured visibility timeout and redrive policy.
func (q *Queue) Ensure(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	dlq := queue.DeadLetter(name)
	_, err := q.create(ctx, dlq, map[string]string{
		string(types.QueueAttributeNameMessageRetentionPeriod): secs(dlqRetention),
	})
	if err != nil {
		return err
	}
	arn, err := q.ARN(ctx, dlq)
	if err != nil {
		return err
	}
	redrive, _ := json.Marshal(map[string]string{ // strings always marshal
		"deadLetterTargetArn": arn,
		"maxReceiveCount":     strconv.Itoa(q.o.MaxReceives),
	})
	_, err = q.create(ctx, name, map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): secs(q.o.Visibility),
		string(types.QueueAttributeNameRedrivePolicy):     string(redrive),
	})
	return err
}

// create makes queue name with attrs; an existing queue with other attributes gets them set.
func (q *Queue) create(ctx context.Context, name string, attrs map[string]string) (string, error) {
	op := "ensure queue " + name
	out, err := q.api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name, Attributes: attrs})
	if err == nil {
		q.remember(name, aws.ToString(out.QueueUrl))
		return aws.ToString(out.QueueUrl), nil
	}
	var exists *types.QueueNameExists
	if !errors.As(err, &exists) && !hasCode(err, "QueueAlreadyExists") {
		return "", apiError(op, err)
	}
	q.forget(name)
	u, err := q.URL(ctx, name)
	if err != nil {
		return "", err
	}
	if _, err := q.api.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &u, Attributes: attrs}); err != nil {
		return "", q.fail(op, name, err)
	}
	return u, nil
}

func secs(d time.Duration) string { return strconv.Itoa(int(d.Round(time.Second) / time.Second)) }

// Remove deletes the queue and its dead-letter queue; missing ones are not an error.
func (q *Queue) Remove(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	for _, n := range []string{name, queue.DeadLetter(name)} {
		q.forget(n) // look up afresh: a cached URL may belong to a queue already recreated
		u, err := q.URL(ctx, n)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		_, err = q.api.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &u})
		q.forget(n)
		if err != nil && !errs.Is(apiError("", err), errs.NotFound) {
			return apiError("remove queue "+n, err)
		}
	}
	return nil
}

// Send enqueues bodies in batches of up to ten messages and MaxBatchSize bytes. Standard
// queues deliver in roughly, not strictly, the order sent.
func (q *Queue) Send(ctx context.Context, name string, bodies ...[]byte) error {
	if len(bodies) == 0 {
		return nil
	}
	u, err := q.URL(ctx, name)
	if err != nil {
		return err
	}
	entries := make([]types.SendMessageBatchRequestEntry, len(bodies))
	sizes := make([]int, len(bodies))
	for i, b := range bodies {
		entries[i], sizes[i] = encode(i, b)
		if sizes[i] > MaxBatchSize {
			return errs.E(errs.TooLarge, "send to "+name, fmt.Sprintf("message %d is %d bytes encoded; SQS takes at most %d", i, sizes[i], MaxBatchSize))
		}
	}
	for start := 0; start < len(entries); {
		end, size := start, 0
		for end < len(entries) && end-start < queue.MaxBatch && size+sizes[end] <= MaxBatchSize {
			size += sizes[end]
			end++
		}
		if err := q.sendBatch(ctx, name, u, entries[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// maxSendAttempts bounds resending entries SQS failed on its side (not the sender's).
const maxSendAttempts = 5

func (q *Queue) sendBatch(ctx context.Context, name, u string, entries []types.SendMessageBatchRequestEntry) error {
	op := "send to " + name
	for attempt := 1; ; attempt++ {
		out, err := q.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &u, Entries: entries})
		if err != nil {
			return q.fail(op, name, err)
		}
		if len(out.Failed) == 0 {
			return nil
		}
		byID := make(map[string]types.SendMessageBatchRequestEntry, len(entries))
		for _, e := range entries {
			byID[aws.ToString(e.Id)] = e
		}
		var retry []types.SendMessageBatchRequestEntry
		for _, f := range out.Failed {
			if f.SenderFault {
				return errs.E(errs.Invalid, op, fmt.Sprintf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
			}
			retry = append(retry, byID[aws.ToString(f.Id)])
		}
		if attempt >= maxSendAttempts {
			f := out.Failed[0]
			return errs.E(errs.Transient, op, fmt.Sprintf("%d messages failed: %s: %s", len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message)))
		}
		entries = retry
	}
}

// encode builds a batch entry for body and returns the bytes it counts against the
// batch size limit.
func encode(i int, body []byte) (types.SendMessageBatchRequestEntry, int) {
	e := types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i))}
	if sendable(body) {
		e.MessageBody = aws.String(string(body))
		return e, len(body)
	}
	enc := base64.StdEncoding.EncodeToString(body)
	if enc == "" {
		enc = "=" // SQS rejects an empty body; "=" decodes to nothing
	}
	e.MessageBody = aws.String(enc)
	e.MessageAttributes = map[string]types.MessageAttributeValue{
		encAttr: {DataType: aws.String("String"), StringValue: aws.String(encBase64)},
	}
	return e, len(enc) + len(encAttr) + len("String") + len(encBase64)
}

// sendable reports whether SQS accepts body as it is: not empty, valid UTF-8, and only
// the characters #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
func sendable(body []byte) bool {
	if len(body) == 0 || !utf8.Valid(body) {
		return false
	}
	for _, r := range string(body) {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

func decode(m types.Message) ([]byte, error) {
	body := aws.ToString(m.Body)
	if a, ok := m.MessageAttributes[encAttr]; ok && aws.ToString(a.StringValue) == encBase64 {
		if body == "=" {
			return []byte{}, nil
		}
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("message %s: bad base64 body: %w", aws.ToString(m.MessageId), err)
		}
		return b, nil
	}
	return []byte(body), nil
}

// Receive long-polls for up to wait (SQS counts whole seconds: a wait under a second
// becomes one second), then takes further full batches without waiting until max.
func (q *Queue) Receive(ctx context.Context, name string, max int, wait time.Duration) ([]queue.Message, error) {
	if max <= 0 {
		return []queue.Message{}, nil
	}
	u, err := q.URL(ctx, name)
	if err != nil {
		return nil, err
	}
	out := []queue.Message{}
	deadline := time.Now().Add(wait)
	for {
		n := min(max-len(out), queue.MaxBatch)
		w := time.Duration(0)
		if len(out) == 0 {
			w = min(time.Until(deadline), MaxWait)
		}
		got, err := q.receive(ctx, name, u, n, w)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		switch {
		case len(out) >= max:
			return out, nil
		case len(got) == 0 && len(out) == 0 && time.Until(deadline) > 0:
			continue // a wait longer than one long poll
		case len(got) < n:
			return out, nil
		}
	}
}

func (q *Queue) receive(ctx context.Context, name, u string, n int, wait time.Duration) ([]queue.Message, error) {
	secs := int32(0)
	if wait > 0 {
		secs = int32((wait + time.Second - 1) / time.Second)
	}
	resp, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    &u,
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             secs,
		MessageAttributeNames:       []string{encAttr},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		return nil, q.fail("receive from "+name, name, err)
	}
	msgs := make([]queue.Message, 0, len(resp.Messages))
	for _, m := range resp.Messages {
		body, err := decode(m)
		if err != nil {
			return nil, errs.Wrap(errs.Other, "receive from "+name, err)
		}
		receives, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		msgs = append(msgs, queue.Message{
			ID:       aws.ToString(m.MessageId),
			Body:     body,
			Receipt:  aws.ToString(m.ReceiptHandle),
			Receives: max(receives, 1),
		})
	}
	return msgs, nil
}

// Ack deletes messages by receipt, ten per request. Receipts SQS calls invalid (expired,
// unknown) are skipped, as the port says.
func (q *Queue) Ack(ctx context.Context, name string, receipts ...string) error {
	if len(receipts) == 0 {
		return nil
	}
	u, err := q.URL(ctx, name)
	if err != nil {
		return err
	}
	op := "ack on " + name
	for start := 0; start < len(receipts); start += queue.MaxBatch {
		chunk := receipts[start:min(start+queue.MaxBatch, len(receipts))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, r := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		out, err := q.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &u, Entries: entries})
		if err != nil {
			if hasCode(err, "ReceiptHandleIsInvalid") {
				continue
			}
			return q.fail(op, name, err)
		}
		for _, f := range out.Failed {
			switch aws.ToString(f.Code) {
			case "ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight":
				continue
			}
			return errs.E(errs.Transient, op, fmt.Sprintf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return nil
}

func hasCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

// apiError gives an SDK error the Kind a caller acts on.
func apiError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var missing *types.QueueDoesNotExist
	if errors.As(err, &missing) || hasCode(err, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist") {
		return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "no such queue", Err: err}
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return errs.Wrap(errs.Unavailable, op, err)
	}
	switch ae.ErrorCode() {
	case "RequestThrottled", "ThrottlingException", "OverLimit":
		return errs.Wrap(errs.RateLimited, op, err)
	case "QueueDeletedRecently", "ServiceUnavailable", "InternalError", "InternalFailure":
		return errs.Wrap(errs.Transient, op, err)
	case "InvalidParameterValue", "InvalidAttributeName", "InvalidAttributeValue", "InvalidMessageContents", "MissingParameter":
		return errs.Wrap(errs.Invalid, op, err)
	case "BatchRequestTooLong":
		return errs.Wrap(errs.TooLarge, op, err)
	}
	return errs.Wrap(errs.Other, op, err)
}
