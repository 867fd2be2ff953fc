"""A hand-written minimal GraphQL SDL for the fake Open Collective server.

Only the types, fields, arguments and enum values fundcircle uses, with the names of OC's GraphQL
API v2 (reference/open-collective-and-stripe.md §1, §3). It is *not* OC's schema file: the point
is that the client's queries are validated by graphql-core against the same names OC serves, so a
typo in a query fails in the tests instead of in production.
"""

# Currencies: the part of OC's `Currency` enum that fundcircle's money table also knows (OC's enum
# has none of the three-decimal currencies).
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "MXN",
              "BRL", "INR", "ZAR", "SGD", "HKD", "JPY", "KRW", "ISK")

EXPENSE_STATUSES = ("DRAFT", "UNVERIFIED", "PENDING", "INCOMPLETE", "APPROVED", "REJECTED", "PROCESSING", "ERROR",
                    "PAID", "SCHEDULED_FOR_PAYMENT", "SPAM", "CANCELED", "INVITE_DECLINED")

TRANSACTION_KINDS = ("ADDED_FUNDS", "APPLICATION_FEE", "BALANCE_TRANSFER", "CONTRIBUTION", "EXPENSE", "HOST_FEE",
                     "HOST_FEE_SHARE", "HOST_FEE_SHARE_DEBT", "PAYMENT_PROCESSOR_COVER",
                     "PAYMENT_PROCESSOR_DISPUTE_FEE", "PAYMENT_PROCESSOR_FEE", "PLATFORM_FEE", "PLATFORM_TIP",
                     "PLATFORM_TIP_DEBT", "PREPAID_PAYMENT_METHOD", "TAX")

SDL = f"""
scalar DateTime
scalar JSON
scalar URL

enum Currency {{ {" ".join(CURRENCIES)} }}
enum ExpenseStatus {{ {" ".join(EXPENSE_STATUSES)} }}
enum ExpenseStatusFilter {{ {" ".join(EXPENSE_STATUSES)} READY_TO_PAY ON_HOLD }}
enum ExpenseType {{ INVOICE RECEIPT FUNDING_REQUEST GRANT UNCLASSIFIED CHARGE SETTLEMENT PLATFORM_BILLING }}
enum ExpenseCurrencySource {{ HOST ACCOUNT EXPENSE CREATED_BY_ACCOUNT }}
enum DateTimeField {{ CREATED_AT EFFECTIVE_DATE LAST_CHARGED_AT PAID_AT }}
enum OrderDirection {{ ASC DESC }}
enum TransactionType {{ DEBIT CREDIT }}
enum TransactionKind {{ {" ".join(TRANSACTION_KINDS)} }}
enum RefundKind {{ REFUND REJECT EDIT DUPLICATE DISPUTE }}
enum ExpenseProcessAction {{
  APPROVE UNAPPROVE REQUEST_RE_APPROVAL REJECT MARK_AS_UNPAID SCHEDULE_FOR_PAYMENT UNSCHEDULE_PAYMENT PAY
  MARK_AS_PAID_WITH_STRIPE MARK_AS_SPAM MARK_AS_INCOMPLETE HOLD RELEASE DECLINE_INVITED_EXPENSE
}}
enum MarkAsUnPaidExpenseStatus {{ APPROVED INCOMPLETE ERROR }}
enum FeesPayer {{ COLLECTIVE PAYEE }}
enum PayoutMethodType {{ OTHER PAYPAL BANK_ACCOUNT ACCOUNT_BALANCE CREDIT_CARD STRIPE }}
enum ActivityType {{
  ACTIVITY_ALL COLLECTIVE_EXPENSE_CREATED COLLECTIVE_EXPENSE_UPDATED COLLECTIVE_EXPENSE_APPROVED
  COLLECTIVE_EXPENSE_REJECTED COLLECTIVE_EXPENSE_PAID COLLECTIVE_EXPENSE_MARKED_AS_UNPAID
  COLLECTIVE_EXPENSE_PROCESSING COLLECTIVE_EXPENSE_ERROR COLLECTIVE_TRANSACTION_CREATED
}}

input AccountReferenceInput {{ id: String legacyId: Int slug: String }}
input ExpenseReferenceInput {{ id: String legacyId: Int }}
input ChronologicalOrderInput {{ field: DateTimeField! = CREATED_AT direction: OrderDirection! = DESC }}
input AmountInput {{ value: Float currency: Currency valueInCents: Int }}
input PayoutMethodInput {{
  id: String publicId: String legacyId: Int data: JSON name: String isSaved: Boolean type: PayoutMethodType
  currency: String
}}
input ExpenseItemCreateInput {{ amount: Int amountV2: AmountInput description: String! url: URL incurredAt: DateTime }}
input ExpenseCreateInput {{
  description: String! longDescription: String currency: Currency tags: [String] type: ExpenseType!
  privateMessage: String payoutMethod: PayoutMethodInput! items: [ExpenseItemCreateInput]
  payee: AccountReferenceInput! customData: JSON reference: String
}}
# the invitee of a drafted expense: an existing account (id/slug) or a new one (name + email)
input ExpenseInvitee {{ id: String slug: String name: String email: String isInvite: Boolean }}
input ExpenseInviteDraftInput {{
  description: String! longDescription: String currency: Currency tags: [String] type: ExpenseType!
  recipientNote: String payoutMethod: PayoutMethodInput items: [ExpenseItemCreateInput]
  payee: ExpenseInvitee! customData: JSON
}}
input ProcessExpensePaymentParams {{
  paymentProcessorFeeInHostCurrency: Int totalAmountPaidInHostCurrency: Int
  shouldRefundPaymentProcessorFee: Boolean markAsUnPaidStatus: MarkAsUnPaidExpenseStatus = APPROVED
  forceManual: Boolean feesPayer: FeesPayer = COLLECTIVE clearedAt: DateTime
}}
input WebhookCreateInput {{ account: AccountReferenceInput! activityType: ActivityType! = ACTIVITY_ALL webhookUrl: URL! }}

type Amount {{ value: Float currency: Currency valueInCents: Float }}

interface Account {{ id: String! slug: String! name: String type: String! }}
type Collective implements Account {{ id: String! slug: String! name: String type: String! currency: Currency }}
type Individual implements Account {{ id: String! slug: String! name: String type: String! }}
type Organization implements Account {{ id: String! slug: String! name: String type: String! }}

type PayoutMethod {{ id: String! type: PayoutMethodType }}

type Expense {{
  id: String! publicId: String! legacyId: Int!
  description: String! longDescription: String reference: String
  status: ExpenseStatus! type: ExpenseType! currency: Currency!
  createdAt: DateTime! paidAt: DateTime onHold: Boolean tags: [String]! customData: JSON
  feesPayer: FeesPayer!
  amountV2(currencySource: ExpenseCurrencySource = EXPENSE): Amount!
  payee: Account! account: Account! payoutMethod: PayoutMethod draftKey: String
}}
type ExpenseCollection {{ offset: Int limit: Int totalCount: Int nodes: [Expense!]! }}

interface Transaction {{
  id: String! publicId: String! legacyId: Int! group: String! type: TransactionType! kind: TransactionKind
  refundKind: RefundKind description: String
  amount: Amount! amountInHostCurrency: Amount! netAmount: Amount! netAmountInHostCurrency: Amount!
  paymentProcessorFee: Amount! hostCurrencyFxRate: Float
  isRefund: Boolean! isRefunded: Boolean!
  createdAt: DateTime clearedAt: DateTime
  account: Account oppositeAccount: Account expense: Expense
}}
type Credit implements Transaction {{
  id: String! publicId: String! legacyId: Int! group: String! type: TransactionType! kind: TransactionKind
  refundKind: RefundKind description: String
  amount: Amount! amountInHostCurrency: Amount! netAmount: Amount! netAmountInHostCurrency: Amount!
  paymentProcessorFee: Amount! hostCurrencyFxRate: Float
  isRefund: Boolean! isRefunded: Boolean!
  createdAt: DateTime clearedAt: DateTime
  account: Account oppositeAccount: Account expense: Expense
}}
type Debit implements Transaction {{
  id: String! publicId: String! legacyId: Int! group: String! type: TransactionType! kind: TransactionKind
  refundKind: RefundKind description: String
  amount: Amount! amountInHostCurrency: Amount! netAmount: Amount! netAmountInHostCurrency: Amount!
  paymentProcessorFee: Amount! hostCurrencyFxRate: Float
  isRefund: Boolean! isRefunded: Boolean!
  createdAt: DateTime clearedAt: DateTime
  account: Account oppositeAccount: Account expense: Expense
}}
type TransactionCollection {{ offset: Int limit: Int totalCount: Int nodes: [Transaction!]! }}

type Webhook {{ id: String! activityType: ActivityType webhookUrl: URL }}

type Query {{
  expenses(
    limit: Int! = 10, offset: Int! = 0, account: AccountReferenceInput, fromAccount: AccountReferenceInput,
    status: [ExpenseStatusFilter], type: ExpenseType, types: [ExpenseType],
    orderBy: ChronologicalOrderInput! = {{field: CREATED_AT, direction: DESC}},
    dateFrom: DateTime, dateTo: DateTime, searchTerm: String, customData: JSON
  ): ExpenseCollection!
  expense(expense: ExpenseReferenceInput, id: String): Expense
  transactions(
    account: [AccountReferenceInput!], limit: Int! = 100, offset: Int! = 0, type: TransactionType,
    kind: [TransactionKind], group: [String], expense: ExpenseReferenceInput,
    dateFrom: DateTime, dateTo: DateTime,
    orderBy: ChronologicalOrderInput! = {{field: CREATED_AT, direction: DESC}}
  ): TransactionCollection!
}}

type Mutation {{
  createExpense(expense: ExpenseCreateInput!, account: AccountReferenceInput!): Expense!
  draftExpenseAndInviteUser(expense: ExpenseInviteDraftInput!, account: AccountReferenceInput!): Expense!
  processExpense(
    expense: ExpenseReferenceInput!, action: ExpenseProcessAction!, message: String,
    paymentParams: ProcessExpensePaymentParams
  ): Expense!
  createWebhook(webhook: WebhookCreateInput!): Webhook
}}
"""
