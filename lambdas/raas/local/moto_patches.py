"""Fixes to moto's DynamoDB for the local platform and the tests, written for one moto version.

1. `transact_write_items` journals the items it touches instead of copying whole tables.

   moto 5.2.5 (`moto/dynamodb/models/__init__.py`, `DynamoDBBackend.transact_write_items`)
   takes `copy.deepcopy(table)` of every table a transaction names, once per transaction item,
   so that it can put the copies back if the transaction is cancelled. Every transaction thus
   costs time proportional to the size of the tables it touches, and a workload that writes
   through transactions (raas accepts, ingests and meters with them) becomes quadratic: measured
   in one process, accepting a document cost 35 ms with 250 documents in the tenant and 341 ms
   with 1,500.

   The replacement below runs moto's own loop, statement for statement, with one difference:
   before an item's operation reads or writes its key, the journal saves a deep copy of that one
   item (or notes that it is absent), whether its hash bucket existed (moto's range-keyed
   `Table.items` is a defaultdict, and `get_item` on an unknown hash key leaves an empty bucket
   behind), and, once per table, the position of the table's stream records. On cancellation it
   restores exactly those, so every table is as moto's own rollback would leave it:

   - items, hash-only and hash+range, with their attributes as they were (Update mutates items
     in place, hence the deep copy);
   - secondary indexes: moto derives them from the items on every read, so they follow;
   - item counts and sizes (`DescribeTable`): computed from the items;
   - stream records appended by the transaction's writes are dropped again.

   What it does not reproduce, deliberately: moto's rollback replaces each touched `Table`
   object by its copy, so the `Table` identity changes; here the same object stays, and a
   deleted-then-restored item goes to the end of the internal dict (every moto read path
   sorts, so no API call can tell). moto also snapshots a table only when it is named by
   name, not by ARN; the journal covers both.

   Cost per transaction: one deep copy per item the transaction touches, whatever the size of
   the tables. Written to be offered upstream: the function is self-contained and keeps moto's
   error behaviour (which exceptions cancel, which roll back and re-raise).

2. Writes are serialised (`put_item`, `update_item`, `delete_item`, `batch_write_item`,
   `transact_write_items`) under one lock. moto has no locking; DynamoDB makes each transaction
   all-or-nothing and serializable against other transactions and single-item writes
   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html,
   "Isolation levels for DynamoDB transactions"). The journal does not change that
   need: a transaction still checks and writes its items one after another, and a write another
   thread made to one of them in between would be undone by the rollback (two racing
   hash claims could then both "win"), so the lock stays.

3. A query of a table (not of an index) reads only its partition. moto 5.2.5's `Table.query` lists and
   sorts every item of the table (`all_items()`) and keeps those with the queried hash key, so each page
   of a tenant's documents, each usage read, cost time proportional to all tenants' data: with 10,000
   documents loaded, `GET /v1/usage` (one export-ledger query) was a third of `raas local`'s busy CPU
   (py-spy). The replacement runs moto's own `query` over a view of the table whose `all_items()` is the
   partition's items in the same (hash, range) order, so results, order, paging, filters and limits are
   moto's. The view also leaves out what moto's loop would pass over anyway: items a string sort-key
   condition excludes, and items at or before a page's start key (moto skipped them one by one, so
   reading a 10,000-item partition 100 at a time cost 100 full passes). Index queries are left alone: an
   index's partition is not a bucket of `Table.items`.

4. moto's own cost per request, which is most of the local platform's time per document (py-spy over the
   ingest path: bench/ingest_throughput.py), made smaller without changing an answer:
   - DynamoDB responses that are plain data are written to JSON directly instead of through moto's generic,
     model-driven serializer, with the same bytes (raas.local.moto_serializer says how, when, and how the tests
     check it);
   - an UpdateExpression text is parsed once, its tree copied for the validator from a pickle instead of by
     `copy.deepcopy`, the validator's traversers build their node-type table once each, and a condition
     expression text is lexed once (`_install_parsed_expressions_once` says why each is safe);
   - the handler class's method names are listed once per class instead of on every request, and moto's S3
     URL module is reloaded only when `MOTO_S3_CUSTOM_ENDPOINTS` changed (it was reloaded on every request).

5. moto's SQS walked every queued message several times a request (counts for every attribute read, two
   clock readings a message, two passes a delete): `raas.local.moto_sqs` says what changed and how the tests
   hold it to moto's answers.

6. moto keeps every model instance it ever makes (every item, every S3 key and each deep copy of it) in a
   list per class for its dashboard (`BaseModel.__new__`, `instances_tracked`). The local platform used to
   drop those lists after each mutating request (`reset_model_data`), which freed thousands of copies at once
   on a request thread, their finalizers closing spooled temporary files, while another thread was making new
   copies (moto's `list_object_versions` deep-copies every key of the bucket). `raas local` segfaulted
   there: faulthandler showed both threads inside `tempfile`'s `__del__`, three times in four starts on a
   restored state of 10,000 documents. Instances are now never tracked (`_install_untracked_models`): each is
   freed when moto itself lets go of it.

7. moto's ListObjectVersions deep-copies every object of the bucket on every page, whatever the prefix; the
   listing now sees only the keys under its prefix (`_install_version_listing_under_prefix`), so purging one
   tenant no longer copies every other tenant's documents.

8. moto's KMS `Key` makes an RSA-2048 private key for every key it creates, a symmetric one too (`Key.__init__`
   calls `generate_private_key(key_spec)`, whose fallback for SYMMETRIC_DEFAULT and HMAC specs is RSA-2048): 58 ms
   of CPU, a third of what creating a tenant costs (each tenant gets its own key). A symmetric key's private key
   is read only by Sign, Verify and GetPublicKey, which AWS refuses for a symmetric key anyway (Sign and Verify need
   an asymmetric SIGN_VERIFY key: https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html; GetPublicKey
   "returns the public key of an asymmetric KMS key": https://docs.aws.amazon.com/kms/latest/APIReference/API_GetPublicKey.html);
   it is now made on first use instead (`_install_lazy_kms_private_keys`), so nothing moto answers changes.

`install()` is idempotent and refuses, loudly, a moto version it was not written for.
Production code never imports this module (nor moto).
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raas.local import moto_serializer, moto_sqs

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import StreamShard, Table

SUPPORTED_MOTO_VERSION = "5.2.5"
_SERIALIZED_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
_write_lock = threading.RLock()
_install_lock = threading.Lock()
_moto_originals: dict[str, Any] = {}


class UnsupportedMotoVersion(RuntimeError):
    """The installed moto is not the version these patches were written and tested against."""


@dataclass
class _SavedSlot:
    """One item's place in a table as it was before the transaction touched it."""

    table: Table
    hash_value: DynamoType
    range_value: DynamoType | None
    bucket_existed: bool  # range-keyed tables: whether `table.items[hash_value]` existed at all
    item: Item | None  # a deep copy of the item, None if there was none


class ItemJournal:
    """What a transaction needs to undo itself: the items it touches, not the tables."""

    def __init__(self) -> None:
        self.slots: dict[tuple[int, DynamoType, DynamoType | None], _SavedSlot] = {}
        self.streams: dict[int, tuple[StreamShard, list[Any], int]] = {}

    def remember(self, table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> None:
        slot_key = (id(table), hash_value, range_value)
        if slot_key in self.slots:
            return  # the first look is the state before the transaction
        items: Any = table.items  # hash -> Item, or hash -> {range -> Item} (moto types it loosely)
        item: Item | None
        if table.range_key_attr is None:
            bucket_existed = hash_value in items
            item = items.get(hash_value)
        else:
            bucket = items.get(hash_value)  # .get: do not create the bucket
            bucket_existed = bucket is not None
            item = bucket.get(range_value) if bucket is not None else None
        self.slots[slot_key] = _SavedSlot(table, hash_value, range_value, bucket_existed, copy.deepcopy(item))
        shard = table.stream_shard
        if shard is not None and id(table) not in self.streams:
            # StreamShard.add appends; after handing records to a Lambda mapping it starts a new
            # list. Either way the list we hold keeps the records up to our length.
            self.streams[id(table)] = (shard, shard.items, len(shard.items))

    def rollback(self) -> None:
        for slot in reversed(list(self.slots.values())):
            items: Any = slot.table.items
            if slot.table.range_key_attr is None:
                if slot.item is not None:
                    items[slot.hash_value] = slot.item
                else:
                    items.pop(slot.hash_value, None)
                continue
            if slot.item is not None:
                items[slot.hash_value][slot.range_value] = slot.item
            elif slot.hash_value in items:
                items[slot.hash_value].pop(slot.range_value, None)
            if not slot.bucket_existed and slot.hash_value in items and not items[slot.hash_value]:
                del items[slot.hash_value]
        for shard, records, length in self.streams.values():
            del records[length:]
            shard.items = records


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's `DynamoDBBackend.transact_write_items`, rolling back touched items only."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal = ItemJournal()  # moto: a deepcopy of every table named, taken here

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException

        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            # The only addition to moto's loop. It resolves the key exactly as the get_item
            # below does, so it raises what that would raise, before anything is changed.
            touched = self.get_table(table_name)
            journal.remember(touched, *self.get_keys_value(touched, key))

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, expression_attribute_names, expression_attribute_values)
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            journal.rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - as moto: any other failure cancels the transaction
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]

    if any(code is not None for code, _, _ in errors):
        journal.rollback()
        raise TransactionCanceledException(errors)


def original(name: str) -> Any:
    """moto's own `DynamoDBBackend.<name>` (or another function `install()` replaced, by the name it is kept under)
    as it was before `install()`: tests compare against it."""
    from moto.dynamodb.models import DynamoDBBackend

    return _moto_originals[name] if name in _moto_originals else getattr(DynamoDBBackend, name)


def _check_version() -> None:
    import moto

    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        raise UnsupportedMotoVersion(
            f"raas.local.moto_patches was written for moto {SUPPORTED_MOTO_VERSION}; moto {moto.__version__} is installed. "
            "Compare moto's DynamoDBBackend.transact_write_items with the copy in this module, carry its changes over "
            "(or drop the patch if moto no longer deep-copies whole tables), run tests/integration/test_moto_transactions.py, "
            "then update SUPPORTED_MOTO_VERSION."
        )


def install() -> None:
    """Applies the patches above to moto's classes (server and in-process mock alike), and SQS's
    (`raas.local.moto_sqs`). Idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    with _install_lock:
        _check_version()
        moto_sqs.install()  # idempotent on its own, so a test that took SQS's patches off gets them back
        if getattr(DynamoDBBackend, "_raas_patched", False):
            return
        for name in _SERIALIZED_WRITES:
            _moto_originals[name] = getattr(DynamoDBBackend, name)
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        for name in _SERIALIZED_WRITES:
            setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
        DynamoDBBackend._raas_patched = True  # type: ignore[attr-defined]
        _install_partition_queries()
        _install_action_names_once()
        _install_parsed_expressions_once()
        _install_s3_urls_once()
        _install_untracked_models()
        _install_version_listing_under_prefix()
        _install_lazy_kms_private_keys()
        moto_serializer.install()


_listing_prefix = threading.local()


class _KeysUnderPrefix:
    def __init__(self, keys: Any, prefix: str):
        self._keys, self._prefix = keys, prefix

    def iterlists(self) -> Any:
        return ((name, versions) for name, versions in self._keys.iterlists() if name.startswith(self._prefix))


class _BucketUnderPrefix:
    """A bucket whose `keys.iterlists()` yields only the keys under a prefix; everything else is the bucket's."""

    def __init__(self, bucket: Any, prefix: str):
        self._bucket, self.keys = bucket, _KeysUnderPrefix(bucket.keys, prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)


def _install_version_listing_under_prefix() -> None:
    """moto's `S3Backend.list_object_versions` deep-copies every version of every key in the bucket (bytes
    included), then sorts them and skips those outside the prefix, on every page. The tenant purge lists a
    tenant's prefix page by page, so each page copied every tenant's documents. Here the listing sees only the
    keys under its prefix (through `get_bucket`, for the duration of the call on its thread). The answer is
    the same: keys outside the prefix are never listed, are sorted after or before all of those under it, and
    the page markers are keys under it (`tests/integration/test_moto_reads.py` compares pages with moto's)."""
    from moto.s3.models import S3Backend

    listing, get_bucket = S3Backend.list_object_versions, S3Backend.get_bucket
    _moto_originals["S3Backend.list_object_versions"], _moto_originals["S3Backend.get_bucket"] = listing, get_bucket

    def bucket_seen_by_listing(self: Any, bucket_name: str) -> Any:
        bucket = get_bucket(self, bucket_name)
        prefix = getattr(_listing_prefix, "value", "")
        return _BucketUnderPrefix(bucket, prefix) if prefix else bucket

    signature = inspect.signature(listing)

    @functools.wraps(listing)
    def list_object_versions(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, bucket_name, *args, **kwargs)
        _listing_prefix.value = bound.arguments.get("prefix") or ""
        try:
            return listing(self, bucket_name, *args, **kwargs)
        finally:
            _listing_prefix.value = ""

    S3Backend.get_bucket = bucket_seen_by_listing  # type: ignore[method-assign]
    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign]


class _PrivateKeyOnFirstUse:
    """moto's private key for a key spec, made when something first reads it (see 8. above)."""

    _making = threading.Lock()  # one for all: a key is made at most once, and making one is rare

    def __init__(self, make: Callable[[str], Any], key_spec: str):
        self._make, self._key_spec = make, key_spec
        self._made: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_make", "_key_spec", "_made"):  # copy and pickle probe a bare instance
            raise AttributeError(name)
        with self._making:
            if self._made is None:
                self._made = self._make(self._key_spec)
        return getattr(self._made, name)


def _install_lazy_kms_private_keys() -> None:
    """A symmetric or HMAC key's private key on first use; an asymmetric key's (RSA, ECC, SM2), made as moto makes it."""
    from moto.kms import models
    from moto.kms.utils import KeySpec

    make = models.generate_private_key
    _moto_originals["kms.generate_private_key"] = make
    asymmetric = {KeySpec.RSA_2048, KeySpec.RSA_3072, KeySpec.RSA_4096, KeySpec.SM2, *KeySpec.ecc_key_specs()}

    def generate_private_key(key_spec: str) -> Any:
        return make(key_spec) if key_spec in asymmetric else _PrivateKeyOnFirstUse(make, key_spec)

    models.generate_private_key = generate_private_key


def _install_untracked_models() -> None:
    """moto's `BaseModel.__new__` without the line that appends each instance to its class's dashboard list
    (nothing but moto's /moto-api dashboard reads those lists). The lists already filled are emptied once."""
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    def untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)  # type: ignore[misc]

    BaseModel.__new__ = staticmethod(untracked_new)  # type: ignore[method-assign]
    reset_model_data()


def _install_action_names_once() -> None:
    """moto's `BaseResponse.call_action` lists the handler class's methods with `inspect.getmembers` on every
    request, to see whether the action is one of them (`moto/core/responses.py`); a class's methods do not
    change while moto runs, so the list is made once per class."""
    from moto.core import responses

    _moto_originals["method_names_from_class"] = responses.method_names_from_class
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


def _install_parsed_expressions_once() -> None:
    """moto parses an UpdateExpression twice per write (the handler to check its placeholders, the backend to run
    it: `moto/dynamodb/responses.py`, `models/__init__.py`) and then deep-copies the tree for its validator
    (`parsing/validators.py`, `Validator.__init__`), which substitutes names and values into its own copy. raas
    sends the same few expression texts again and again with other values, and the parsed tree depends on the
    text alone, so:

    - each text is parsed once (an LRU of 1,024 texts); a text that fails to parse raises every time, as
      before, since only results are kept. Nothing changes a parsed tree: moto reads it (`find_clauses`) and
      hands it to the validator, which copies it first.
    - the tree is pickled once, and the validator's copy of it is unpickled from those bytes instead of made by
      `copy.deepcopy`: both rebuild each node through the same `__reduce_ex__` protocol (the nodes are plain
      objects with no copy hooks; their parent links are kept by either's memo), and unpickling is C, about 7x
      faster. Any other value the validator copies (a DynamoType, a tree not parsed here) is deep-copied as before.

    The validator's traversers walk the trees by node class (`_install_typed_traversal`).
    """
    import pickle

    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    moto_make = UpdateExpressionParser.make
    _moto_originals["UpdateExpressionParser.make"] = moto_make

    @functools.lru_cache(maxsize=1024)
    def make(expression: str) -> Any:
        tree = moto_make(expression)
        tree._raas_pickled = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)  # taken before the mark is set
        return tree

    UpdateExpressionParser.make = staticmethod(make)

    def deepcopy(value: Any, memo: Any = None) -> Any:
        pickled = getattr(value, "_raas_pickled", None) if memo is None else None
        return pickle.loads(pickled) if pickled is not None else copy.deepcopy(value, memo)  # noqa: S301 - our own bytes

    validators.deepcopy = deepcopy  # type: ignore[assignment]

    _install_typed_traversal(DepthFirstTraverser)

    # Condition expressions (`ConditionExpressionParser`, `moto/dynamodb/comparisons.py`) resolve names and values
    # while they parse, so only their first step is the text's alone: the lexer's list of tokens, immutable named
    # tuples that the later steps read and wrap in new nodes (none of them changes a token or its empty `children`).
    from moto.dynamodb.comparisons import ConditionExpressionParser

    moto_lex = ConditionExpressionParser._lex_condition_expression
    _moto_originals["ConditionExpressionParser._lex_condition_expression"] = moto_lex

    @functools.lru_cache(maxsize=1024)
    def tokens(expression: str) -> tuple[Any, ...]:
        parser = ConditionExpressionParser.__new__(ConditionExpressionParser)
        parser.condition_expression = expression
        return tuple(moto_lex(parser))

    def lex(self: Any) -> Any:
        return deque(tokens(self.condition_expression))

    ConditionExpressionParser._lex_condition_expression = lex  # type: ignore[method-assign]


def _install_typed_traversal(traverser: Any) -> None:
    """Each validation walks the update's tree once per traverser (ten of them, `Validator.get_ast_processors`), and
    at every node moto asks `isinstance` of abstract classes (`Node`, then every class of the traverser's table):
    ABCMeta's check, in Python, was half of an UpdateItem's time. Whether a node is a `Node`, and which processor
    takes it (the first class of the table it is an instance of, in the table's order, as `process` finds it),
    depend on the node's class alone, so they are asked once per class (per traverser, whose table holds its own
    bound methods: moto's `nodes_to_be_processed` and `process` called `_processing_map()` at every node, and every
    `_processing_map` in moto 5.2.5 returns the same classes and bound methods for the life of the traverser, so
    it is called once per traverser here). The walk is moto 5.2.5's `DepthFirstTraverser.traverse_node_recursively` otherwise: the same
    order, the same `pre_processing_of_child` calls (skipped where a traverser keeps the base class's no-op), the
    same replacement of a processed node in its parent. `Node.find_clauses` (which the overlapping-paths and
    action-count validators run at every update-expression node) asks its `isinstance` once per class too."""
    from moto.dynamodb.parsing.ast_nodes import Expression, Node, UpdateExpressionFunction  # type: ignore[attr-defined]

    is_node: dict[type, bool] = {}
    no_op = traverser.pre_processing_of_child
    _moto_originals["DepthFirstTraverser.traverse_node_recursively"] = traverser.traverse_node_recursively
    _moto_originals["Node.find_clauses"] = Node.find_clauses

    def processor_for(self: Any, kind: type) -> Callable[[Any], Any] | None:
        chosen = self.__dict__.get("_raas_processor_by_type")
        if chosen is None:
            chosen = self.__dict__["_raas_processor_by_type"] = {}
            self.__dict__["_raas_processing_map"] = self._processing_map()
        if kind not in chosen:
            table = self.__dict__["_raas_processing_map"]
            chosen[kind] = next((processor for class_key, processor in table.items() if issubclass(kind, class_key)), None)
        return chosen[kind]

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        known = is_node.get(kind)
        if known is None:
            known = is_node[kind] = isinstance(node, Node)
        if not known:
            return node
        parent_node = node.parent
        if node.children is not None:
            pre_processing = None if type(self).pre_processing_of_child is no_op else self.pre_processing_of_child
            for i, child_node in enumerate(node.children):
                if pre_processing is not None:
                    pre_processing(node, i)
                self.traverse_node_recursively(child_node, i)
        processor = processor_for(self, kind)
        if processor is not None:
            node = processor(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    descends: dict[type, bool] = {}

    def find_clauses(self: Any, clause_types: Any) -> list[Any]:
        clauses = []
        for child in self.children or []:
            kind = type(child)
            if kind in clause_types:
                clauses.append(child)
                continue
            descend = descends.get(kind)
            if descend is None:
                descend = descends[kind] = isinstance(child, (Expression, UpdateExpressionFunction))
            if descend:
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    traverser.traverse_node_recursively = traverse_node_recursively
    Node.find_clauses = find_clauses


def _install_s3_urls_once() -> None:
    """moto's `S3Backend._url_module` reloads `moto.s3.urls` (`importlib.reload`) every time the URL table is
    read, which the in-process mock does on every S3 request, so that a change of `MOTO_S3_CUSTOM_ENDPOINTS`
    takes effect. The module is reloaded here only when that setting changed since the last reading."""
    from moto import settings
    from moto.s3.models import S3Backend

    reloading: Any = S3Backend._url_module  # the property object: moto's getter is its fget
    _moto_originals["S3Backend._url_module"] = reloading
    last: dict[str, Any] = {}

    def url_module(self: Any) -> Any:
        endpoints = tuple(settings.get_s3_custom_endpoints())
        if last.get("endpoints") != endpoints:  # never None: the first reading always loads
            last["module"] = reloading.fget(self)
            last["endpoints"] = endpoints
        return last["module"]

    S3Backend._url_module = property(url_module)  # type: ignore[method-assign,assignment]


class _PartitionView:
    """A table as its own query sees it when the query names a hash key: `all_items()` is that partition,
    narrowed to the items a string sort-key condition (`begins_with`, `BETWEEN`, comparisons) keeps. moto's
    query tests that same condition on each item anyway and counts, pages and limits only the items that
    pass, so leaving the others out changes nothing it answers; it saves comparing every item of a large
    partition through moto's typed values (a tenant's export records among its 10,000 documents)."""

    def __init__(
        self,
        table: Table,
        hash_key: DynamoType,
        range_comparison: str | None = None,
        range_objs: Any = (),
        start: tuple[dict[str, Any] | None, bool] = (None, True),
    ):
        self._table = table
        self._hash_key = hash_key
        self._keep = _string_condition(range_comparison, list(range_objs or ()))
        self._start, self._forward = self._start_in_partition(start[0]), start[1]

    def _start_in_partition(self, exclusive_start_key: dict[str, Any] | None) -> DynamoType | None:
        """The sort key a page starts after, when it is a key of this partition: moto's own loop skips, item by
        item, every item before or at it. Without leaving those out here, reading a partition page by page
        cost time proportional to the partition on every page. None: no key, or another partition's (moto decides)."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self._table
        if not exclusive_start_key or not table.range_key_attr:
            return None
        start_hash, start_range = exclusive_start_key.get(table.hash_key_attr), exclusive_start_key.get(table.range_key_attr)
        if start_hash is None or start_range is None or DynamoType(start_hash) != self._hash_key:
            return None
        return DynamoType(start_range)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def all_items(self) -> list[Item]:
        table = self._table
        for _attempt in range(100):  # a write may add to the partition while it is copied (moto has no read lock)
            try:
                if table.range_key_attr:
                    bucket = table.items.get(self._hash_key)
                    items = list(bucket.values()) if bucket else []
                else:
                    single = table.items.get(self._hash_key)
                    items = [single] if single is not None else []
                break
            except RuntimeError:
                continue
        else:
            return list(table.all_items())
        keep, start = self._keep, self._start
        if keep is not None:
            items = [i for i in items if i.range_key is not None and i.range_key.type == "S" and keep(i.range_key.value)]
        if start is not None and all(i.range_key is not None and i.range_key.type == start.type for i in items):
            # (a start key of another type: moto's loop decides, or raises)
            items = [i for i in items if (i.range_key > start if self._forward else i.range_key < start)]
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _string_condition(comparison: str | None, values: list[Any]) -> Callable[[str], bool] | None:
    """The sort-key condition as a test on the raw string, when it and its values are strings (moto compares
    a string's `cast_value`, which is the string itself); None when there is nothing (or nothing safe) to narrow by."""
    if comparison is None or not values or any(getattr(v, "type", None) != "S" for v in values):
        return None
    raw = [str(v.value) for v in values]
    tests: dict[str, Callable[[str], bool]] = {
        "BEGINS_WITH": lambda value: value.startswith(raw[0]),
        "BETWEEN": lambda value: raw[0] <= value <= raw[-1],
        "=": lambda value: value == raw[0],
        "<": lambda value: value < raw[0],
        "<=": lambda value: value <= raw[0],
        ">": lambda value: value > raw[0],
        ">=": lambda value: value >= raw[0],
    }
    named = {"EQ": "=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}  # KeyConditions' operator names
    operator = comparison.upper()
    return tests.get(named.get(operator, operator))


def _partition_query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
    moto_query = _moto_originals["Table.query"]
    if hash_key is None or kwargs.get("index_name") or (len(args) > 6 and args[6]):  # index_name: keyword or 8th argument
        return moto_query(self, hash_key, *args, **kwargs)
    range_comparison, range_objs = (args[0], args[1]) if len(args) > 1 else (None, ())
    start = (args[3], bool(args[4])) if len(args) > 4 else (None, True)
    view = _PartitionView(self, hash_key, range_comparison, range_objs, start)
    return moto_query(view, hash_key, *args, **kwargs)


def _install_partition_queries() -> None:
    from moto.dynamodb.models.table import Table

    _moto_originals["Table.query"] = Table.query
    Table.query = _partition_query  # type: ignore[method-assign]


WriteListener = Callable[[Any, str, tuple[Any, ...], dict[str, Any]], None]
_write_listeners: list[WriteListener] = []
_write_depth = threading.local()


def hold_writes() -> AbstractContextManager[Any]:
    """The lock every DynamoDB write of moto holds while it applies (re-entrant): a reader that walks a table's
    dicts (raas.local.moto_reads) holds it so that no write changes them meanwhile."""
    return _write_lock


def add_write_listener(listener: WriteListener) -> None:
    """Calls `listener(backend, method_name, args, kwargs)` after each outermost write succeeds, still under
    the write lock (so listeners see writes in the order they were applied). Writes nested in another (the
    puts a transaction makes) are not reported on their own: a cancelled transaction rolls them back.
    The local platform's write journal (raas.local.journal) is the one user."""
    _write_listeners.append(listener)


def remove_write_listener(listener: WriteListener) -> None:
    if listener in _write_listeners:
        _write_listeners.remove(listener)


_after_writes: list[Callable[[], None]] = []


def add_after_write(callback: Callable[[], None]) -> None:
    """Calls `callback()` after each outermost write that succeeded, once the write lock is released, on the
    writing thread, before the write returns. A listener keeps its slow part (system calls) for here: a call
    that lets the interpreter lock go while moto's write lock is held can wait a whole switch interval to take
    the interpreter lock back, and every other write of the platform waits behind it."""
    _after_writes.append(callback)


def remove_after_write(callback: Callable[[], None]) -> None:
    if callback in _after_writes:
        _after_writes.remove(callback)


def _serialized(method: Any) -> Any:
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            depth = getattr(_write_depth, "value", 0)
            _write_depth.value = depth + 1
            try:
                result = method(self, *args, **kwargs)
            finally:
                _write_depth.value = depth
            if depth == 0:
                for listener in list(_write_listeners):
                    listener(self, method.__name__, args, kwargs)
        if depth == 0:
            for callback in list(_after_writes):
                callback()
        return result

    locked.__name__ = method.__name__
    locked.__doc__ = method.__doc__
    return locked


ObjectListener = Callable[[str, str], None]
_object_listeners: list[ObjectListener] = []
_object_lock = threading.Lock()


def add_object_listener(listener: ObjectListener) -> None:
    """Calls `listener(bucket, key)` after moto's S3 backend puts or deletes an object (copies, multipart
    completions and multi-object deletes go through those two). The local state directory uses it to save
    only the objects that changed, instead of listing the whole bucket every second."""
    _install_object_hooks()
    _object_listeners.append(listener)


def remove_object_listener(listener: ObjectListener) -> None:
    if listener in _object_listeners:
        _object_listeners.remove(listener)


def _install_object_hooks() -> None:
    from moto.s3.models import S3Backend

    with _object_lock:
        if getattr(S3Backend, "_raas_object_hooks", False):
            return
        for name in ("put_object", "delete_object"):
            setattr(S3Backend, name, _reporting_object_change(getattr(S3Backend, name)))
        S3Backend._raas_object_hooks = True  # type: ignore[attr-defined]


def _reporting_object_change(method: Any) -> Any:
    parameters = list(inspect.signature(method).parameters)
    bucket_at, key_at = parameters.index("bucket_name") - 1, parameters.index("key_name") - 1

    def reporting(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        bucket = kwargs["bucket_name"] if "bucket_name" in kwargs else args[bucket_at]
        key = kwargs["key_name"] if "key_name" in kwargs else args[key_at]
        for listener in list(_object_listeners):
            listener(bucket, key)
        return result

    reporting.__name__ = method.__name__
    reporting.__doc__ = method.__doc__
    return reporting
