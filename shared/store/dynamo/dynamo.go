// Package dynamo is the store.Store adapter on one DynamoDB table (single-table design,
// docs/aws-single-table.md): a record is one item keyed by (kind, id); each store index
// is a sparse GSI; Expires is DynamoDB's TTL plus a filter on read; a multi-op Write is
// one TransactWriteItems. Every write of one record is a single UpdateItem or DeleteItem,
// and Counters reports how many write requests the store made.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// MaxWriteOps is TransactWriteItems' limit: a Write with more ops is errs.TooLarge.
const MaxWriteOps = 100

// dynamoAPI is the part of the DynamoDB client the store uses.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Options tune a Store.
type Options struct {
	// Clock decides when a record has expired; default the wall clock.
	Clock clock.Clock
}

// Counters count the requests a Store has sent. A benchmark divides WriteRequests by
// elapsed time to get writes/s as DynamoDB bills them per request (a transaction is one
// request of WriteItems items, billed twice per item).
type Counters struct {
	WriteRequests uint64 // UpdateItem, DeleteItem and TransactWriteItems calls
	WriteItems    uint64 // items those requests wrote or deleted
	ReadRequests  uint64 // GetItem and Query calls
}

// Store is a store.Store on one DynamoDB table.
type Store struct {
	api   dynamoAPI
	table string
	clock clock.Clock

	writeReqs, writeItems, readReqs atomic.Uint64
}

var _ store.Store = (*Store)(nil)

// New returns a store on table, which CreateTable makes. It sends no request.
func New(cfg aws.Config, table string, o Options) *Store {
	return newStore(dynamodb.NewFromConfig(cfg), table, o)
}

func newStore(api dynamoAPI, table string, o Options) *Store {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return &Store{api: api, table: table, clock: o.Clock}
}

// Table returns the table name.
func (s *Store) Table() string { return s.table }

// Counters returns the request counts so far.
func (s *Store) Counters() Counters {
	return Counters{
		WriteRequests: s.writeReqs.Load(),
		WriteItems:    s.writeItems.Load(),
		ReadRequests:  s.readReqs.Load(),
	}
}

// Close releases nothing: the SDK client holds no resources that need closing.
func (s *Store) Close() error { return nil }

// Get reads kind/id with a strongly consistent read.
func (s *Store) Get(ctx context.Context, kind, id string) (store.Record, error) {
	if kind == "" || id == "" {
		return store.Record{}, store.NotFound(kind, id)
	}
	s.readReqs.Add(1)
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            key(kind, id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Record{}, apiError("get "+kind+"/"+id, err)
	}
	if out.Item == nil {
		return store.Record{}, store.NotFound(kind, id)
	}
	r, ok, err := decode(out.Item, s.clock.Now())
	if err != nil {
		return store.Record{}, err
	}
	if !ok {
		return store.Record{}, store.NotFound(kind, id)
	}
	return r, nil
}

// Write applies ops atomically: one op is one UpdateItem or DeleteItem, more are one
// TransactWriteItems (at most MaxWriteOps).
func (s *Store) Write(ctx context.Context, ops ...store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := store.ValidateOps(ops); err != nil {
		return errs.Wrap(errs.Invalid, "", err)
	}
	if len(ops) > MaxWriteOps {
		return errs.E(errs.TooLarge, "store write", fmt.Sprintf("%d ops in one write; DynamoDB transactions take at most %d", len(ops), MaxWriteOps))
	}
	for _, op := range ops {
		if !op.Delete && itemSize(op.Record) > MaxItemSize {
			return errs.E(errs.TooLarge, "store write "+op.Record.Kind+"/"+op.Record.ID,
				fmt.Sprintf("record of about %d bytes; DynamoDB items hold at most %d", itemSize(op.Record), MaxItemSize))
		}
	}
	if len(ops) == 1 {
		return s.writeOne(ctx, ops[0])
	}
	return s.writeTx(ctx, ops)
}

// maxResets bounds the retries of an Any write that races with writers around an
// expired leftover item (each retry means another writer made progress).
const maxResets = 8

func (s *Store) writeOne(ctx context.Context, op store.Op) error {
	r := op.Record
	reset := false
	for attempt := 0; ; attempt++ {
		now := s.clock.Now()
		var err error
		if op.Delete {
			err = s.deleteItem(ctx, op, now)
		} else {
			err = s.updateItem(ctx, op, now, reset)
		}
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &ccf):
			return apiError("write "+r.Kind+"/"+r.ID, err)
		case op.Cond != store.Any || op.Delete || attempt >= maxResets:
			return store.ConditionFailed(r.Kind, r.ID)
		}
		// An Any write found an expired leftover (or, in reset form, found it gone):
		// try the other form.
		reset = !reset
	}
}

func (s *Store) updateItem(ctx context.Context, op store.Op, now time.Time, reset bool) error {
	e := newExpr()
	cond := e.condition(op, now, reset)
	upd := e.update(op, reset)
	in := &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(op.Record.Kind, op.Record.ID),
		UpdateExpression:          &upd,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	}
	if cond != "" {
		in.ConditionExpression = &cond
	}
	s.writeReqs.Add(1)
	s.writeItems.Add(1)
	_, err := s.api.UpdateItem(ctx, in)
	return err
}

func (s *Store) deleteItem(ctx context.Context, op store.Op, now time.Time) error {
	e := newExpr()
	cond := e.condition(op, now, false)
	in := &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       key(op.Record.Kind, op.Record.ID),
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	}
	if cond != "" {
		in.ConditionExpression = &cond
	}
	s.writeReqs.Add(1)
	s.writeItems.Add(1)
	_, err := s.api.DeleteItem(ctx, in)
	return err
}

// maxTxAttempts bounds retries of a transaction cancelled by a conflicting transaction
// (which is not a failed precondition) or by Any writes meeting expired leftovers.
const maxTxAttempts = 10

func (s *Store) writeTx(ctx context.Context, ops []store.Op) error {
	reset := make([]bool, len(ops))
	for attempt := 0; ; attempt++ {
		now := s.clock.Now()
		items := make([]types.TransactWriteItem, len(ops))
		for i, op := range ops {
			items[i] = s.txItem(op, now, reset[i])
		}
		s.writeReqs.Add(1)
		s.writeItems.Add(uint64(len(items)))
		_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return apiError("store write", err)
		}
		retry, failed := classifyCancel(ops, tce.CancellationReasons, reset)
		if failed >= 0 {
			return store.ConditionFailed(ops[failed].Record.Kind, ops[failed].Record.ID)
		}
		if !retry || attempt >= maxTxAttempts {
			return errs.Wrap(errs.Transient, "store write", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// classifyCancel reads why a transaction was cancelled. failed is the index of an op
// whose precondition failed (-1 if none); retry says the transaction may succeed if sent
// again (after flipping the form of Any writes that met an expired leftover, done in place
// in reset).
func classifyCancel(ops []store.Op, reasons []types.CancellationReason, reset []bool) (retry bool, failed int) {
	if len(reasons) != len(ops) {
		// Without per-item reasons there is no telling which op failed; the first op
		// with a precondition is the best report.
		for i, op := range ops {
			if op.Cond != store.Any {
				return false, i
			}
		}
		return false, 0
	}
	for i, r := range reasons {
		code := aws.ToString(r.Code)
		switch code {
		case "", "None":
		case "ConditionalCheckFailed":
			if ops[i].Cond != store.Any || ops[i].Delete {
				return false, i
			}
			reset[i] = !reset[i]
			retry = true
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
			retry = true
		default:
			return false, -1
		}
	}
	return retry, -1
}

func (s *Store) txItem(op store.Op, now time.Time, reset bool) types.TransactWriteItem {
	e := newExpr()
	cond := e.condition(op, now, reset)
	var cp *string
	if cond != "" {
		cp = &cond
	}
	k := key(op.Record.Kind, op.Record.ID)
	if op.Delete {
		return types.TransactWriteItem{Delete: &types.Delete{
			TableName: &s.table, Key: k, ConditionExpression: cp,
			ExpressionAttributeNames: e.nameMap(), ExpressionAttributeValues: e.valueMap(),
		}}
	}
	upd := e.update(op, reset)
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &s.table, Key: k, UpdateExpression: &upd, ConditionExpression: cp,
		ExpressionAttributeNames: e.nameMap(), ExpressionAttributeValues: e.valueMap(),
	}}
}

func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(1<<min(attempt, 6)) * 5 * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// List returns one page of q. Without an index it queries the kind's partition of the
// table with a strongly consistent read; with one, the index's GSI, which is eventually
// consistent.
func (s *Store) List(ctx context.Context, kind string, q store.Query) ([]store.Record, string, error) {
	if err := store.ValidateQuery(kind, q); err != nil {
		return nil, "", errs.Wrap(errs.Invalid, "", err)
	}
	limit := clampLimit(q.Limit)
	if q.From != "" && q.To != "" && q.From >= q.To {
		return nil, "", nil
	}
	e := newExpr()
	in := &dynamodb.QueryInput{TableName: &s.table}
	var pkName, skName, pk string
	var keyNames []string
	if q.Index == "" {
		pkName, skName, pk = attrPK, attrSK, kind
		keyNames = []string{attrPK, attrSK}
		in.ConsistentRead = aws.Bool(true)
	} else {
		pkName, skName, pk = indexPKAttr(q.Index), indexSKAttr(q.Index), indexPK(kind, q.Part)
		keyNames = []string{attrPK, attrSK, pkName, skName}
		in.IndexName = aws.String(GSIName(q.Index))
	}
	cond := e.n(pkName) + " = " + e.v(str(pk))
	// One sort-key condition is allowed: BETWEEN is inclusive, so with both bounds the
	// upper one is filtered below (an index key never equals To: it ends in sortSep+id).
	switch {
	case q.From != "" && q.To != "":
		cond += " AND " + e.n(skName) + " BETWEEN " + e.v(str(q.From)) + " AND " + e.v(str(q.To))
	case q.From != "":
		cond += " AND " + e.n(skName) + " >= " + e.v(str(q.From))
	case q.To != "":
		cond += " AND " + e.n(skName) + " < " + e.v(str(q.To))
	}
	in.KeyConditionExpression = &cond
	in.ExpressionAttributeNames = e.nameMap()
	in.ExpressionAttributeValues = e.valueMap()
	if q.After != "" {
		start, err := decodeMarker(q.After, keyNames, pkName, pk)
		if err != nil {
			return nil, "", err
		}
		in.ExclusiveStartKey = start
	}

	// Read one record past the page so that the last page says so (marker "").
	var out []store.Record
	var lastKeys []map[string]types.AttributeValue
	now := s.clock.Now()
	for {
		in.Limit = aws.Int32(int32(limit + 1 - len(out)))
		s.readReqs.Add(1)
		resp, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, "", apiError("list "+kind, err)
		}
		for _, item := range resp.Items {
			r, ok, err := decode(item, now)
			if err != nil {
				return nil, "", err
			}
			if q.Index == "" && q.To != "" && r.ID >= q.To {
				return out, "", nil
			}
			if !ok {
				continue
			}
			out = append(out, r)
			k := make(map[string]types.AttributeValue, len(keyNames))
			for _, n := range keyNames {
				k[n] = item[n]
			}
			lastKeys = append(lastKeys, k)
		}
		if len(out) > limit {
			return out[:limit], encodeMarker(lastKeys[limit-1]), nil
		}
		if resp.LastEvaluatedKey == nil {
			return out, "", nil
		}
		in.ExclusiveStartKey = resp.LastEvaluatedKey
	}
}

// apiError gives an SDK error the Kind a caller acts on.
func apiError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return errs.Wrap(errs.Unavailable, op, err)
	}
	switch ae.ErrorCode() {
	case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
		return errs.Wrap(errs.RateLimited, op, err)
	case "TransactionConflictException", "TransactionInProgressException", "InternalServerError", "ServiceUnavailable":
		return errs.Wrap(errs.Transient, op, err)
	case "ResourceNotFoundException":
		return errs.Wrap(errs.Unavailable, op, err)
	case "ValidationException":
		return errs.Wrap(errs.Invalid, op, err)
	case "ItemCollectionSizeLimitExceededException":
		return errs.Wrap(errs.TooLarge, op, err)
	}
	return errs.Wrap(errs.Other, op, err)
}
