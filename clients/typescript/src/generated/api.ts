// Generated from clients/openapi.json by clients/generate.sh (openapi-typescript).
// Do not edit: run clients/generate.sh.

export interface paths {
    "/v1/balances": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["createBalance"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/balances/check": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Whether `amount` could be debited now; changes nothing. */
        post: operations["checkBalance"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/balances/credit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["creditBalance"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/balances/debit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Checks and deducts in one atomic step; when short, nothing changes. */
        post: operations["debitBalance"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/balances/reserve": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Holds an amount until committed, released or expired. */
        post: operations["reserveBalance"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/balances/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getBalance"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/balances/{id}/transactions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The ledger, newest first. */
        get: operations["listBalanceTransactions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/client-tokens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Mints a token for one customer, for a browser or mobile app to use on `/v1/client/…`. */
        post: operations["createClientToken"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/client-tokens/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A token's customer, contexts (the server context included) and status. */
        get: operations["getClientToken"];
        put?: never;
        post?: never;
        /** Revokes a token at once, on every instance. */
        delete: operations["revokeClientToken"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/client/events/record": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** `POST /v1/events/record` for the token's customer. */
        post: operations["clientRecordEvent"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/client/events/summary": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** `GET /v1/customers/{id}/usage` for the token's customer. */
        get: operations["clientUsageSummary"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/client/limits/check": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** `POST /v1/limits/check` for the token's customer. */
        post: operations["clientCheckLimits"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/client/token": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The calling token's project, customer, public context and expiry. */
        get: operations["getClientTokenInfo"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/customers": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["listCustomers"];
        put?: never;
        post: operations["createCustomer"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/customers/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getCustomer"];
        put: operations["updateCustomer"];
        post?: never;
        delete: operations["deleteCustomer"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/customers/{id}/balances": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The customer's balances by name. A customer holds few, so they are paged in memory. */
        get: operations["listCustomerBalances"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/customers/{id}/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Every meter's value in the customer's current day and month windows, and in the window of
         *     every other period a limit on that meter uses for this customer.
         */
        get: operations["getCustomerUsage"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Events newest first. */
        get: operations["listEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/events/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Records up to 1,000 events in one transaction. If any event is invalid, none is recorded
         *     and the error names it (`events[3].customerId`).
         */
        post: operations["recordEventBatch"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/events/record": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["recordEvent"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["listLimits"];
        put?: never;
        /** Creates a limit; usage already recorded in its current windows counts from the start. */
        post: operations["createLimit"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits/check": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Whether the customer is within every limit that applies; with `mode: consume`, also records
         *     the usage in the same atomic step if and only if it fits.
         */
        post: operations["checkLimits"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits/reservations/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A reservation with its audit trail. */
        get: operations["getLimitReservation"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits/reservations/{id}/commit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Records the actual usage and ends the holds, settling the reservation's balance holds too. */
        post: operations["commitLimitReservation"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits/reservations/{id}/extend": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Keeps the holds (and the balance holds) for `ttlSeconds` from now. */
        post: operations["extendLimitReservation"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits/reservations/{id}/release": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Ends the holds without recording usage, releasing the reservation's balance holds too. */
        post: operations["releaseLimitReservation"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getLimit"];
        /** Changes a limit; its counters are rebuilt for the current windows. */
        put: operations["updateLimit"];
        post?: never;
        delete: operations["deleteLimit"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/limits/{id}/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Usage by customer in the current window: the customers the limit governs that have used
         *     some of it, closest to the limit first. Customers without usage are left out.
         */
        get: operations["getLimitUsage"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/meters": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["listMeters"];
        put?: never;
        post: operations["createMeter"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/meters/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getMeter"];
        /** Changes a meter; the counters of its limits are rebuilt from the recorded events. */
        put: operations["updateMeter"];
        post?: never;
        /** Deletes a meter no limit uses. */
        delete: operations["deleteMeter"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/meters/{id}/query": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * The meter's value over a date range, optionally per customer, filtered by dimensions,
         *     grouped, and as an hourly or daily series (UTC buckets).
         */
        post: operations["queryMeter"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getOpenApiDocument"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/project": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getProject"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/reservations/{id}/commit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["commitReservation"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/reservations/{id}/release": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["releaseReservation"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/usage/summary": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getUsageSummary"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Endpoints in creation order. A project holds few, so they are paged in memory. */
        get: operations["listWebhooks"];
        put?: never;
        post: operations["createWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get: operations["getWebhook"];
        put: operations["updateWebhook"];
        post?: never;
        delete: operations["deleteWebhook"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Deliveries newest first, each with every attempt. */
        get: operations["listWebhookDeliveries"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["redeliverWebhookDelivery"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/rotate-secret": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * A new signing secret; the old one keeps signing beside it for the grace period, so every
         *     delivery meanwhile carries a signature for each.
         */
        post: operations["rotateWebhookSecret"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/test": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: operations["sendWebhookTest"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @enum {string} */
        Aggregation: "sum" | "count" | "max" | "latest";
        Attempt: {
            id: string;
            /** Format: date-time */
            attemptedAt: string;
            /** Format: int64 */
            statusCode?: number | null;
            error?: string | null;
            /** Format: int64 */
            durationMs: number;
            /** @description The first 256 bytes of the receiver's answer, for diagnosis; never the whole answer. */
            responseExcerpt?: string | null;
        };
        Balance: {
            id: string;
            projectId: string;
            customerId: string;
            name: string;
            unit: string;
            /** Format: int64 */
            currentBalance: number;
            /** Format: int64 */
            minimumBalance: number;
            /** Format: int64 */
            heldBalance: number;
            /**
             * Format: int64
             * @description `currentBalance − minimumBalance − heldBalance`.
             */
            availableBalance: number;
            /** Format: int64 */
            lowBalanceThreshold?: number | null;
            /**
             * @description Dimension pairs the balance is scoped to, as given on creation; stored and returned,
             *     never used to pick a balance (a balance is named by its customer and `name`).
             */
            dimensionFilters: {
                [key: string]: string;
            };
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        BalanceAmount: {
            name?: string | null;
            /** Format: int64 */
            amount: number;
        };
        BalanceCheckRequest: components["schemas"]["BalanceTarget"] & {
            /** Format: int64 */
            amount: number;
        };
        /**
         * @description Whether an amount could be debited now. The flat fields beside `balance` are the shape
         *     Limitry documents; `amount` and `requestedAmount` are the same number.
         */
        BalanceCheckResponse: {
            sufficient: boolean;
            /** Format: int64 */
            amount: number;
            /** Format: int64 */
            requestedAmount: number;
            /** Format: int64 */
            availableBalance: number;
            balanceId: string;
            name: string;
            unit: string;
            /** Format: int64 */
            currentBalance: number;
            /** Format: int64 */
            minimumBalance: number;
            balance: components["schemas"]["Balance"];
        };
        /** @description Whether a named balance covers the amount a check asked about. */
        BalanceStatus: {
            name: string;
            /** @description Null when the customer has no balance of that name (then it is not sufficient). */
            balanceId?: string | null;
            /** Format: int64 */
            amount: number;
            /** Format: int64 */
            availableBalance: number;
            sufficient: boolean;
        };
        /** @description Names a balance: by `balanceId`, or by `customerId` and `name`. */
        BalanceTarget: {
            balanceId?: string | null;
            /** @description The customer's externalId or cust_… id. */
            customerId?: string | null;
            name?: string | null;
        };
        BatchRequest: {
            events: components["schemas"]["EventInput"][];
        };
        BatchResponse: {
            /** @description One result per event, in request order. */
            results: components["schemas"]["RecordResponse"][];
            /** @description Events newly recorded (duplicates excluded). */
            count: number;
            duplicates: number;
        };
        /**
         * @description What a check does.
         * @enum {string}
         */
        CheckMode: "preview" | "consume" | "reserve";
        CheckRequest: {
            /** @description The customer's externalId (or cust_… id). */
            customerId: string;
            /** @description At most 32 pairs. */
            dimensions?: {
                [key: string]: string;
            } | null;
            /**
             * Format: double
             * @description The amount about to be used: a limit passes only if used + requested <= limit.
             */
            requested?: number | null;
            /** @description Balances the work will draw on (at most 20): each must cover its amount for `allowed`. */
            balances?: components["schemas"]["BalanceAmount"][] | null;
            mode?: null | components["schemas"]["CheckMode"];
            event?: null | components["schemas"]["ConsumeEvent"];
            /**
             * Format: int64
             * @description With `mode: reserve`: seconds until the holds lapse unless committed, released or
             *     extended (default 300, at most 3600).
             */
            ttlSeconds?: number | null;
        };
        /** @description The answer to "may this customer do more work now?". */
        CheckResponse: {
            allowed: boolean;
            /** @description Why not, when not allowed: `limit_exceeded` or `insufficient_balance`. */
            reason?: string | null;
            /**
             * @description The customer's `cust_…` id; the `externalId` as sent while no usage has been recorded
             *     for it (it is created by its first record).
             */
            customerId: string;
            limits: components["schemas"]["LimitStatus"][];
            /** @description Present when the check named balances: whether each can cover its amount. */
            balances?: components["schemas"]["BalanceStatus"][];
            /**
             * Format: date-time
             * @description The instant up to which the usage this answer counted is known to be current: every
             *     record acknowledged before it is included. On SQLite the instance's memory is the
             *     truth, so it is the time of the check; on PostgreSQL, where other instances record too,
             *     it is how far this instance has heard their changes (typically a few milliseconds to a
             *     tenth of a second behind), or the time of the check when the counters were read.
             */
            asOf: string;
            /** @description With `mode: consume`, when the event was recorded: its id. */
            eventId?: string | null;
            /**
             * @description With `mode: consume`, when the event was recorded: whether its idempotency key was
             *     seen before (then it counted once, the first time).
             */
            duplicate?: boolean | null;
            /**
             * @description With `mode: reserve`, when allowed: the `lres_…` reservation holding `requested` on
             *     every limit listed (and each balance's amount), to commit, release or extend.
             */
            reservationId?: string | null;
            /**
             * Format: date-time
             * @description With `mode: reserve`, when allowed: when the holds lapse unless extended.
             */
            expiresAt?: string | null;
        };
        ClientCheckRequest: {
            /** @description Set by the token; if sent, it must be the token's customer. */
            customerId?: string | null;
            /** @description At most 32 pairs. */
            dimensions?: {
                [key: string]: string;
            } | null;
            /**
             * Format: double
             * @description The amount about to be used: a limit passes only if used + requested <= limit.
             */
            requested?: number | null;
            /** @description The customer's balances the work will draw on (at most 20). */
            balances?: components["schemas"]["BalanceAmount"][] | null;
        };
        /** @description An event for the token's customer. */
        ClientEventInput: {
            /** @description Set by the token; if sent, it must be the token's customer. */
            customerId?: string | null;
            eventType: string;
            values?: {
                [key: string]: number;
            } | null;
            dimensions?: {
                [key: string]: string;
            } | null;
            properties?: unknown;
            /** @description RFC 3339; defaults to now. */
            timestamp?: string | null;
            idempotencyKey?: string | null;
        };
        /** @description A new client token. `token` is shown only here. */
        ClientTokenCreated: {
            /** @description `ct_…` */
            id: string;
            /** @description `limitry_ct_…`: hand it to the browser. */
            token: string;
            customerId: string;
            context: Record<string, unknown>;
            /** Format: date-time */
            expiresAt: string;
        };
        /** @description A client token as the backend sees it (never its secret). */
        ClientTokenDetails: {
            id: string;
            customerId: string;
            context: Record<string, unknown>;
            serverContext: Record<string, unknown>;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            expiresAt: string;
            /** Format: date-time */
            revokedAt?: string | null;
            /** @description `active`, `expired` or `revoked`. */
            status: string;
        };
        /** @description What the browser may know about its token: never the server context. */
        ClientTokenInfo: {
            id: string;
            projectId: string;
            customerId: string;
            context: Record<string, unknown>;
            /** Format: date-time */
            expiresAt: string;
        };
        ClientTokenRequest: {
            /**
             * @description The customer the token acts for: an externalId (created on first record) or a `cust_…`
             *     id. May instead be given as `context.customerId`.
             */
            customerId: string;
            /**
             * @description Public: the browser reads it back from `GET /v1/client/token`. A JSON object, at most
             *     16 KiB. (`publicMetadata` is accepted as another name.)
             */
            context?: Record<string, unknown> | null;
            /** @description Private: only API-key routes show it. A JSON object, at most 16 KiB. */
            serverContext?: Record<string, unknown> | null;
            /**
             * Format: int64
             * @description Lifetime, 1–86400 seconds; default 3600.
             */
            ttlSeconds?: number | null;
        };
        CommitRequest: {
            /**
             * Format: int64
             * @description The actual amount used (0 or more). Up to the hold is always taken; beyond it, only
             *     what is available.
             */
            amount: number;
            description?: string | null;
        };
        CommitReservationRequest: {
            event?: null | components["schemas"]["ConsumeEvent"];
            /**
             * @description The actual amounts to take from the balances the reservation holds, by name; a held
             *     balance not named is taken at what it holds. Up to the hold is always taken; beyond
             *     it, only what is available.
             */
            balances?: components["schemas"]["BalanceAmount"][] | null;
        };
        /**
         * @description The usage a `consume` check records when it fits: an event of the check's customer, stamped
         *     now.
         */
        ConsumeEvent: {
            eventType: string;
            /** @description At most 64 values, each within ±10^12. */
            values?: {
                [key: string]: number;
            } | null;
            /** @description At most 32 pairs; default: the check's `dimensions`. */
            dimensions?: {
                [key: string]: string;
            } | null;
            /** @description Free JSON, not metered. */
            properties?: unknown;
            /** @description A retry with the same key records once (and answers `duplicate: true`). */
            idempotencyKey?: string | null;
        };
        CreateBalanceRequest: {
            customerId?: string | null;
            name?: string | null;
            /** @description Default `credits`. */
            unit?: string | null;
            /** Format: int64 */
            initialBalance?: number | null;
            /**
             * Format: int64
             * @description 0 (default): no overdraft; negative: overdraft down to it; positive: a reserve.
             */
            minimumBalance?: number | null;
            /** Format: int64 */
            lowBalanceThreshold?: number | null;
            /**
             * @description Dimension pairs the balance is scoped to (keys `[A-Za-z0-9_]{1,64}`, values at most 256
             *     characters): stored and returned as given.
             */
            dimensionFilters?: {
                [key: string]: string;
            } | null;
        };
        Customer: {
            id: string;
            projectId: string;
            externalId: string;
            name?: string | null;
            email?: string | null;
            metadata: Record<string, unknown>;
            /** @description IANA name; windows fall back to the project's timezone when unset. */
            timezone?: string | null;
            /** Format: date */
            billingCycleStart?: string | null;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        /**
         * @description A page of a customer's balances: our list shape (`data`, `nextCursor`, `hasMore`) with the
         *     same page also under `balances`, the name Limitry documents for this endpoint.
         */
        CustomerBalancesPage: {
            data: components["schemas"]["Balance"][];
            nextCursor?: string | null;
            hasMore: boolean;
            /** @description The same balances as `data`. */
            balances: components["schemas"]["Balance"][];
        };
        CustomerLimitUsageEntry: {
            /** @description The customer's `cust_…` id. */
            customerId: string;
            customerExternalId: string;
            /** Format: double */
            used: number;
            /** Format: double */
            remaining: number;
            exceeded: boolean;
            /**
             * Format: date-time
             * @description The start of the customer's current window (their timezone and billing anchor); for a
             *     rolling limit, the start of the window's oldest bucket.
             */
            windowStart: string;
            /**
             * Format: int64
             * @description Window end in Unix seconds; null for `all_time`. For a rolling limit, when the oldest
             *     usage leaves the window, or while the limit is reached, when enough has left to pass.
             */
            reset?: number | null;
        };
        CustomerRequest: {
            externalId?: string | null;
            name?: string | null;
            email?: string | null;
            metadata?: Record<string, unknown> | null;
            /** @description IANA timezone, e.g. `Europe/Paris`. */
            timezone?: string | null;
            /**
             * @description `YYYY-MM-DD` or an ISO 8601 date-time: its date anchors monthly and annual windows.
             *     Unset (the default), months start on the 1st and years on January 1st.
             */
            billingCycleStart?: string | null;
        };
        /** @description One delivery as the log shows it. */
        Delivery: {
            id: string;
            /** @description The `webhook-id` header and the body's `id`: the same on every attempt. */
            eventId: string;
            eventType: string;
            /** @description The exact body sent. */
            payload: string;
            /** @description `pending`, `delivered` or `failed` (retries used up). */
            status: string;
            /** Format: int64 */
            attempts: number;
            /** Format: date-time */
            nextAttemptAt?: string | null;
            /** Format: date-time */
            lastAttemptAt?: string | null;
            /** Format: int64 */
            lastStatusCode?: number | null;
            /** Format: date-time */
            createdAt: string;
            attemptLog: components["schemas"]["Attempt"][];
        };
        EndpointRequest: {
            url?: string | null;
            description?: string | null;
            /** @description Types to deliver; empty or omitted for all. */
            eventTypes?: string[] | null;
            enabled?: boolean | null;
            /** @description `daily`, `weekly` or `monthly` to receive `usage.summary`; empty string to stop. */
            summaryFrequency?: string | null;
        };
        /** @description An endpoint with its secret: the answer to creation and rotation only. */
        EndpointWithSecret: components["schemas"]["WebhookEndpoint"] & {
            /** @description `whsec_…`: verifies signatures. Shown only now. */
            secret: string;
        };
        ErrorBody: {
            error: components["schemas"]["ErrorDetail"];
        };
        ErrorDetail: {
            code: string;
            message: string;
            /** Format: int32 */
            status: number;
            /** @description The offending field's JSON path, for validation errors. */
            field?: string | null;
        };
        /** @description A recorded event as the API lists it. */
        Event: {
            id: string;
            /** @description Internal customer id (`cust_…`). */
            customerId: string;
            customerExternalId: string;
            eventType: string;
            values: {
                [key: string]: number;
            };
            dimensions: {
                [key: string]: string;
            };
            properties: Record<string, unknown>;
            /** Format: date-time */
            timestamp: string;
            idempotencyKey?: string | null;
            /** Format: date-time */
            createdAt: string;
        };
        /** @description Which events a meter sees: all pairs must match. */
        EventFilter: {
            eventType?: string | null;
            dimensions?: {
                [key: string]: string;
            };
        };
        /**
         * @description An event as the application sends it; every field optional here so that a missing one is
         *     reported by name.
         */
        EventInput: {
            /** @description The customer's `externalId` (or internal `cust_…` id); created on first use. */
            customerId: string;
            /** @description At most 128 characters. */
            eventType: string;
            /** @description At most 64 values, each within ±10^12. */
            values?: {
                [key: string]: number;
            } | null;
            /** @description At most 32 pairs. */
            dimensions?: {
                [key: string]: string;
            } | null;
            /** @description Free JSON, not metered. */
            properties?: unknown;
            /** @description RFC 3339; defaults to now. */
            timestamp?: string | null;
            idempotencyKey?: string | null;
        };
        ExtendReservationRequest: {
            /**
             * Format: int64
             * @description Seconds from now until the holds lapse (default 300, at most 3600).
             */
            ttlSeconds?: number | null;
        };
        /**
         * @description What a client should do when the service cannot be reached.
         * @enum {string}
         */
        FailMode: "open" | "closed";
        GroupValue: {
            group: {
                [key: string]: string;
            };
            /** Format: double */
            value: number;
            /** @description Present with `windowSize`: every bucket of the range, empty ones at zero. */
            series?: components["schemas"]["SeriesPoint"][] | null;
        };
        LedgerTransaction: {
            id: string;
            balanceId: string;
            type: components["schemas"]["TransactionKind"];
            /**
             * Format: int64
             * @description Signed change of the balance: credits positive, debits and commits negative, so a
             *     balance equals the sum of its ledger's amounts.
             */
            amount: number;
            /**
             * Format: int64
             * @description The size of the operation, never negative: `|amount|`, or `|holdChange|` for a hold,
             *     release or expiry. Limitry's documented ledger shows this figure as `amount`.
             */
            unsignedAmount: number;
            /**
             * Format: int64
             * @description Signed change of the held total: holds positive, their settlement negative.
             */
            holdChange: number;
            description?: string | null;
            reference?: string | null;
            /** Format: int64 */
            balanceAfter: number;
            /** Format: int64 */
            heldAfter: number;
            reservationId?: string | null;
            /** Format: date-time */
            createdAt: string;
        };
        Limit: {
            id: string;
            projectId: string;
            name: string;
            meterId: string;
            /** Format: double */
            limitValue: number;
            period: components["schemas"]["Period"];
            /**
             * @description A sliding window over the last `period` (see `Period::rolling` for its resolution)
             *     rather than calendar windows.
             */
            rolling: boolean;
            /** @description `None`: the project-wide default for every customer. */
            customerId?: string | null;
            dimensionFilters: {
                [key: string]: string;
            };
            /** @description Percentages; `null` when the limit has none, as Limitry documents it. */
            alertThresholds?: number[] | null;
            failMode: components["schemas"]["FailMode"];
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        LimitRequest: {
            name?: string | null;
            meterId?: string | null;
            /** Format: double */
            limitValue?: number | null;
            period?: null | components["schemas"]["Period"];
            /**
             * @description A sliding window over the last `period` instead of calendar windows (default false):
             *     a minute in one-second buckets, an hour in one-minute buckets, 24 hours, 7 days or
             *     30 days (`month`) in one-hour buckets. Not for `annual` or `all_time`, nor for `max`
             *     or `latest` meters.
             */
            rolling?: boolean | null;
            /** @description The customer (id or externalId) this limit is for; omit for the project default. */
            customerId?: string | null;
            dimensionFilters?: {
                [key: string]: string;
            } | null;
            /** @description Percentages 1–100, at most 10. `null` or `[]` clears them; omitted keeps them. */
            alertThresholds?: number[] | null;
            failMode?: null | components["schemas"]["FailMode"];
        };
        /** @description A reservation's state, with its holds and audit trail. */
        LimitReservation: {
            /** @description `lres_…` */
            id: string;
            customerId: string;
            /**
             * Format: double
             * @description What each limit holds, in its meter's units.
             */
            requested: number;
            dimensions: {
                [key: string]: string;
            };
            status: components["schemas"]["ReservationStatus"];
            /** @description The limits it holds capacity on while `held`. */
            limitIds: string[];
            /** @description The balance holds (`res_…`) it settles with it. */
            balanceReservationIds: string[];
            /** @description The event a commit recorded. */
            eventId?: string | null;
            /** Format: date-time */
            expiresAt: string;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            settledAt?: string | null;
            /** @description Every change, oldest first. */
            entries: components["schemas"]["ReservationEntry"][];
        };
        /** @description One limit's state in a check answer. */
        LimitStatus: {
            id: string;
            name: string;
            meterId: string;
            period: components["schemas"]["Period"];
            /** Format: double */
            limit: number;
            /**
             * Format: double
             * @description Recorded usage plus what reservations hold (see `held`).
             */
            used: number;
            /**
             * Format: double
             * @description Of `used`, what reservations in flight hold on this limit; left out when nothing is held.
             */
            held?: number | null;
            /** Format: double */
            remaining: number;
            exceeded: boolean;
            /**
             * Format: int64
             * @description Window end in Unix seconds; null for `all_time`. For a rolling limit, when enough usage
             *     will have left the window for the next request (`requested`, or any while the limit is
             *     reached) to pass; when it passes now, when the oldest usage leaves.
             */
            reset?: number | null;
            failMode: components["schemas"]["FailMode"];
        };
        /** @description Who is closest to a limit. */
        LimitUsageResponse: {
            limitId: string;
            /** Format: double */
            limit: number;
            period: components["schemas"]["Period"];
            /** @description The customers the limit governs with usage in their current window, most used first. */
            data: components["schemas"]["CustomerLimitUsageEntry"][];
        };
        Meter: {
            id: string;
            projectId: string;
            name: string;
            description?: string | null;
            aggregation: components["schemas"]["Aggregation"];
            /** @description `values.<key>`, or `*` for `count`. */
            field: string;
            eventFilter: components["schemas"]["EventFilter"];
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        MeterQueryRequest: {
            /**
             * @description Inclusive; RFC 3339 or YYYY-MM-DD. Default: the start of the current month (the
             *     customer's monthly window with `customerId`, else the calendar month in the project's
             *     timezone).
             */
            startDate?: string | null;
            /** @description Exclusive; RFC 3339 or YYYY-MM-DD. Default: the end of the current month. */
            endDate?: string | null;
            customerId?: string | null;
            dimensions?: {
                [key: string]: string;
            } | null;
            /** @description Dimension keys to group by; `customerId` groups by customer. */
            groupBy?: string[] | null;
            windowSize?: null | components["schemas"]["WindowSize"];
        };
        MeterQueryResult: {
            meterId: string;
            meterName: string;
            aggregation: components["schemas"]["Aggregation"];
            /** Format: date-time */
            startDate: string;
            /** Format: date-time */
            endDate: string;
            /**
             * Format: double
             * @description The meter's value over the whole range and every group.
             */
            value: number;
            /** @description One entry per group (a single entry with an empty `group` when not grouping). */
            groups: components["schemas"]["GroupValue"][];
        };
        MeterRequest: {
            name?: string | null;
            description?: string | null;
            aggregation?: null | components["schemas"]["Aggregation"];
            /** @description `values.<key>`, or `*` for `count`. */
            field?: string | null;
            eventFilter?: null | components["schemas"]["EventFilter"];
        };
        /** @description One meter's value for the customer in one current window. */
        MeterUsage: {
            meterId: string;
            meterName: string;
            aggregation: components["schemas"]["Aggregation"];
            period: components["schemas"]["Period"];
            /** Format: date-time */
            windowStart: string;
            /**
             * Format: date-time
             * @description Null for `all_time`.
             */
            windowEnd?: string | null;
            /** Format: double */
            value: number;
        };
        MovementRequest: components["schemas"]["BalanceTarget"] & {
            /** Format: int64 */
            amount: number;
            /** @description Required for credits. */
            description?: string | null;
            reference?: string | null;
            /**
             * Format: int64
             * @description Reserve only: seconds until the hold expires (default 300, at most 3600).
             */
            ttlSeconds?: number | null;
        };
        /** @description The answer of every ledger operation. */
        OperationResponse: {
            success: boolean;
            /** @description `insufficient_balance` when funds were short; nothing changed then. */
            error?: string | null;
            balance: components["schemas"]["Balance"];
            transaction?: null | components["schemas"]["LedgerTransaction"];
            reservation?: null | components["schemas"]["Reservation"];
            /**
             * Format: int64
             * @description For a commit: the amount debited, and what could not be taken.
             */
            amount?: number | null;
            /** Format: int64 */
            shortfall?: number | null;
        };
        /** @description A page of a list. */
        Page_Customer: {
            data: {
                id: string;
                projectId: string;
                externalId: string;
                name?: string | null;
                email?: string | null;
                metadata: Record<string, unknown>;
                /** @description IANA name; windows fall back to the project's timezone when unset. */
                timezone?: string | null;
                /** Format: date */
                billingCycleStart?: string | null;
                /** Format: date-time */
                createdAt: string;
                /** Format: date-time */
                updatedAt: string;
            }[];
            nextCursor?: string | null;
            hasMore: boolean;
        };
        /** @description A page of a list. */
        Page_Delivery: {
            data: {
                id: string;
                /** @description The `webhook-id` header and the body's `id`: the same on every attempt. */
                eventId: string;
                eventType: string;
                /** @description The exact body sent. */
                payload: string;
                /** @description `pending`, `delivered` or `failed` (retries used up). */
                status: string;
                /** Format: int64 */
                attempts: number;
                /** Format: date-time */
                nextAttemptAt?: string | null;
                /** Format: date-time */
                lastAttemptAt?: string | null;
                /** Format: int64 */
                lastStatusCode?: number | null;
                /** Format: date-time */
                createdAt: string;
                attemptLog: components["schemas"]["Attempt"][];
            }[];
            nextCursor?: string | null;
            hasMore: boolean;
        };
        /** @description A page of a list. */
        Page_Event: {
            data: {
                id: string;
                /** @description Internal customer id (`cust_…`). */
                customerId: string;
                customerExternalId: string;
                eventType: string;
                values: {
                    [key: string]: number;
                };
                dimensions: {
                    [key: string]: string;
                };
                properties: Record<string, unknown>;
                /** Format: date-time */
                timestamp: string;
                idempotencyKey?: string | null;
                /** Format: date-time */
                createdAt: string;
            }[];
            nextCursor?: string | null;
            hasMore: boolean;
        };
        /** @description A page of a list. */
        Page_LedgerTransaction: {
            data: {
                id: string;
                balanceId: string;
                type: components["schemas"]["TransactionKind"];
                /**
                 * Format: int64
                 * @description Signed change of the balance: credits positive, debits and commits negative, so a
                 *     balance equals the sum of its ledger's amounts.
                 */
                amount: number;
                /**
                 * Format: int64
                 * @description The size of the operation, never negative: `|amount|`, or `|holdChange|` for a hold,
                 *     release or expiry. Limitry's documented ledger shows this figure as `amount`.
                 */
                unsignedAmount: number;
                /**
                 * Format: int64
                 * @description Signed change of the held total: holds positive, their settlement negative.
                 */
                holdChange: number;
                description?: string | null;
                reference?: string | null;
                /** Format: int64 */
                balanceAfter: number;
                /** Format: int64 */
                heldAfter: number;
                reservationId?: string | null;
                /** Format: date-time */
                createdAt: string;
            }[];
            nextCursor?: string | null;
            hasMore: boolean;
        };
        /** @description A page of a list. */
        Page_Limit: {
            data: {
                id: string;
                projectId: string;
                name: string;
                meterId: string;
                /** Format: double */
                limitValue: number;
                period: components["schemas"]["Period"];
                /**
                 * @description A sliding window over the last `period` (see `Period::rolling` for its resolution)
                 *     rather than calendar windows.
                 */
                rolling: boolean;
                /** @description `None`: the project-wide default for every customer. */
                customerId?: string | null;
                dimensionFilters: {
                    [key: string]: string;
                };
                /** @description Percentages; `null` when the limit has none, as Limitry documents it. */
                alertThresholds?: number[] | null;
                failMode: components["schemas"]["FailMode"];
                /** Format: date-time */
                createdAt: string;
                /** Format: date-time */
                updatedAt: string;
            }[];
            nextCursor?: string | null;
            hasMore: boolean;
        };
        /** @description A page of a list. */
        Page_Meter: {
            data: {
                id: string;
                projectId: string;
                name: string;
                description?: string | null;
                aggregation: components["schemas"]["Aggregation"];
                /** @description `values.<key>`, or `*` for `count`. */
                field: string;
                eventFilter: components["schemas"]["EventFilter"];
                /** Format: date-time */
                createdAt: string;
                /** Format: date-time */
                updatedAt: string;
            }[];
            nextCursor?: string | null;
            hasMore: boolean;
        };
        /** @description A page of a list. */
        Page_WebhookEndpoint: {
            data: {
                id: string;
                url: string;
                description?: string | null;
                /** @description Event types delivered to this endpoint; empty means all. */
                eventTypes: string[];
                enabled: boolean;
                summaryFrequency?: null | components["schemas"]["SummaryFrequency"];
                /**
                 * Format: date-time
                 * @description When deliveries started failing, if they still do.
                 */
                failingSince?: string | null;
                /** @description Why the service disabled the endpoint, if it did. */
                disabledReason?: string | null;
                /** Format: date-time */
                createdAt: string;
                /** Format: date-time */
                updatedAt: string;
                /**
                 * Format: date-time
                 * @description After a rotation: until when the secret it replaced signs deliveries too (each delivery
                 *     then carries two `v1,` signatures). Null when no rotation left one.
                 */
                previousSecretExpiresAt?: string | null;
            }[];
            nextCursor?: string | null;
            hasMore: boolean;
        };
        /**
         * @description How long a limit counts usage before it starts again from zero.
         * @enum {string}
         */
        Period: "minute" | "hour" | "day" | "week" | "month" | "annual" | "all_time" | "concurrent";
        Project: {
            id: string;
            name: string;
            /** @example UTC */
            timezone: string;
        };
        Queued: {
            /** @description The event's id (the `webhook-id` header), when one was queued. */
            eventId?: string | null;
        };
        RecordResponse: {
            id: string;
            recorded: boolean;
            /** @description True when the idempotency key was seen before; the event counted once. */
            duplicate: boolean;
        };
        Reservation: {
            id: string;
            balanceId: string;
            /** Format: int64 */
            amount: number;
            status: components["schemas"]["ReservationStatus"];
            /**
             * Format: int64
             * @description What a commit actually debited.
             */
            committedAmount?: number | null;
            description?: string | null;
            reference?: string | null;
            /** Format: date-time */
            expiresAt: string;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            settledAt?: string | null;
        };
        /** @description One line of a reservation's audit trail. */
        ReservationEntry: {
            /** @description reserved, extended, committed, released or expired. */
            kind: string;
            /**
             * Format: date-time
             * @description For reserved and extended: until when it holds from then on.
             */
            expiresAt?: string | null;
            /** @description For committed: the event recorded. */
            eventId?: string | null;
            /** Format: date-time */
            createdAt: string;
        };
        /** @enum {string} */
        ReservationStatus: "held" | "committed" | "released" | "expired";
        RotateSecretRequest: {
            /**
             * Format: int64
             * @description Hours the replaced secret keeps signing beside the new one, 0 to 720; the service's
             *     `--webhook-secret-grace-hours` (24 by default) when omitted, 0 to stop it at once.
             */
            graceHours?: number | null;
        };
        SeriesPoint: {
            /** Format: date-time */
            start: string;
            /** Format: date-time */
            end: string;
            /** Format: double */
            value: number;
        };
        /**
         * @description How often an endpoint receives `usage.summary`.
         * @enum {string}
         */
        SummaryFrequency: "daily" | "weekly" | "monthly";
        /**
         * @description How a usage summary splits its date range.
         * @enum {string}
         */
        SummaryPeriod: "day" | "week" | "month" | "total";
        /** @enum {string} */
        TransactionKind: "credit" | "debit" | "hold" | "commit" | "release" | "expire";
        UsageResponse: {
            customerId: string;
            data: components["schemas"]["MeterUsage"][];
        };
        UsageSummary: {
            data: components["schemas"]["UsageSummaryRow"][];
        };
        /** @description One customer's value of one meter in one period. */
        UsageSummaryRow: {
            /** @description The customer's externalId. */
            customerId: string;
            meterId: string;
            meterName: string;
            aggregation: components["schemas"]["Aggregation"];
            /** Format: date-time */
            periodStart: string;
            /** Format: date-time */
            periodEnd: string;
            /** Format: double */
            value: number;
        };
        WebhookEndpoint: {
            id: string;
            url: string;
            description?: string | null;
            /** @description Event types delivered to this endpoint; empty means all. */
            eventTypes: string[];
            enabled: boolean;
            summaryFrequency?: null | components["schemas"]["SummaryFrequency"];
            /**
             * Format: date-time
             * @description When deliveries started failing, if they still do.
             */
            failingSince?: string | null;
            /** @description Why the service disabled the endpoint, if it did. */
            disabledReason?: string | null;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
            /**
             * Format: date-time
             * @description After a rotation: until when the secret it replaced signs deliveries too (each delivery
             *     then carries two `v1,` signatures). Null when no rotation left one.
             */
            previousSecretExpiresAt?: string | null;
        };
        /**
         * @description Bucket size of a series.
         * @enum {string}
         */
        WindowSize: "hour" | "day";
    };
    responses: {
        /** @description invalid_request, missing_required_field or invalid_field_value, naming the field */
        BadRequest: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorBody"];
            };
        };
        /** @description conflict: the Idempotency-Key was used for a different request */
        Conflict: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorBody"];
            };
        };
        /** @description insufficient_permissions: a client token outside /v1/client/…, or an API key on /v1/client/… */
        Forbidden: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorBody"];
            };
        };
        /** @description the named object (or route) does not exist in the key's project */
        NotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorBody"];
            };
        };
        /** @description payload_too_large: the body is over the size limit */
        PayloadTooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorBody"];
            };
        };
        /** @description rate_limit_exceeded: over the API key's rate limit; retry after Retry-After seconds */
        TooManyRequests: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorBody"];
            };
        };
        /** @description missing_api_key, invalid_api_key or expired_api_key */
        Unauthorized: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorBody"];
            };
        };
    };
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    createBalance: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateBalanceRequest"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Balance"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            /** @description a cust_… id that names no customer */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    checkBalance: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["BalanceCheckRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["BalanceCheckResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    creditBalance: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MovementRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["OperationResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    debitBalance: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MovementRequest"];
            };
        };
        responses: {
            /** @description success false with error insufficient_balance when short */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["OperationResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    reserveBalance: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MovementRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["OperationResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    getBalance: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Balance"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    listBalanceTransactions: {
        parameters: {
            query?: {
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page_LedgerTransaction"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    createClientToken: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ClientTokenRequest"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClientTokenCreated"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            /** @description a cust_… id that names no customer */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    getClientToken: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description ct_… id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClientTokenDetails"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    revokeClientToken: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description ct_… id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description revoked: the token gets 401 from now on */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    clientRecordEvent: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ClientEventInput"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RecordResponse"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["PayloadTooLarge"];
        };
    };
    clientUsageSummary: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description every meter's value for the token's customer in its current day and month windows and its limits' windows; empty before its first record */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UsageResponse"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
        };
    };
    clientCheckLimits: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ClientCheckRequest"];
            };
        };
        responses: {
            /** @description the token's customer; a refusal is allowed: false */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CheckResponse"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["PayloadTooLarge"];
        };
    };
    getClientTokenInfo: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClientTokenInfo"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
        };
    };
    listCustomers: {
        parameters: {
            query?: {
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
                search?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page_Customer"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    createCustomer: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CustomerRequest"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Customer"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    getCustomer: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description cust_… id or externalId */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Customer"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    updateCustomer: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description cust_… id or externalId */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CustomerRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Customer"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    deleteCustomer: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description cust_… id or externalId */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description deleted with its events and own limits */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            /** @description the customer holds balances, whose ledgers are kept */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    listCustomerBalances: {
        parameters: {
            query?: {
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
            };
            header?: never;
            path: {
                /** @description cust_… id or externalId */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CustomerBalancesPage"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    getCustomerUsage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description cust_… id or externalId */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UsageResponse"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    listEvents: {
        parameters: {
            query?: {
                /** @description also accepted as customer_id */
                customerId?: string;
                /** @description also accepted as event_type */
                eventType?: string;
                /** @description inclusive, RFC 3339 or YYYY-MM-DD; also accepted as start_date */
                startDate?: string;
                /** @description exclusive; also accepted as end_date */
                endDate?: string;
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page_Event"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    recordEventBatch: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["BatchRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["BatchResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            /** @description a cust_… id that names no customer */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    recordEvent: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EventInput"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RecordResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            /** @description a cust_… id that names no customer */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    listLimits: {
        parameters: {
            query?: {
                /** @description only this customer's own limits */
                customerId?: string;
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page_Limit"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            /** @description no such customer */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    createLimit: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LimitRequest"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Limit"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            /** @description meter_not_found for an unknown meterId; customer_not_found for a cust_… id that names no customer */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            /** @description the meter or customer was deleted meanwhile */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    checkLimits: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CheckRequest"];
            };
        };
        responses: {
            /** @description a refusal is allowed: false, not an error */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CheckResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            /** @description a cust_… id that names no customer */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    getLimitReservation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LimitReservation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    commitLimitReservation: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CommitReservationRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LimitReservation"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            /** @description already committed, released or expired */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    extendLimitReservation: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ExtendReservationRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LimitReservation"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            /** @description already committed, released or expired */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    releaseLimitReservation: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LimitReservation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            /** @description already committed, released or expired */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    getLimit: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Limit"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    updateLimit: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LimitRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Limit"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            /** @description the meter or customer was deleted meanwhile */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    deleteLimit: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    getLimitUsage: {
        parameters: {
            query?: {
                /** @description how many customers, 1–100 (default 50) */
                limit?: number;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LimitUsageResponse"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    listMeters: {
        parameters: {
            query?: {
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page_Meter"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    createMeter: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MeterRequest"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Meter"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    getMeter: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Meter"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    updateMeter: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MeterRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Meter"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    deleteMeter: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    queryMeter: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MeterQueryRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MeterQueryResult"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    getOpenApiDocument: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description this document */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    getProject: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Project"];
                };
            };
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    commitReservation: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CommitRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["OperationResponse"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            /** @description already committed, released or expired */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    releaseReservation: {
        parameters: {
            query?: never;
            header?: {
                "Idempotency-Key"?: string | null;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["OperationResponse"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    getUsageSummary: {
        parameters: {
            query: {
                /** @description inclusive, RFC 3339 or YYYY-MM-DD */
                startDate: string;
                /** @description exclusive */
                endDate: string;
                /** @description total by default; periods in UTC */
                period?: components["schemas"]["SummaryPeriod"];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description JSON, or CSV with Accept: text/csv */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UsageSummary"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    listWebhooks: {
        parameters: {
            query?: {
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page_WebhookEndpoint"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    createWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EndpointRequest"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EndpointWithSecret"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    getWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookEndpoint"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    updateWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EndpointRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookEndpoint"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    deleteWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    listWebhookDeliveries: {
        parameters: {
            query?: {
                /** @description Page size, 1–100 (default 50). */
                limit?: number;
                /** @description `nextCursor` of the previous page. */
                cursor?: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Page_Delivery"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    redeliverWebhookDelivery: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
                deliveryId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description queued again with the same webhook-id */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
    rotateWebhookSecret: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        /** @description optional: the grace period of the old secret */
        requestBody?: {
            content: {
                "application/json": null | components["schemas"]["RotateSecretRequest"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EndpointWithSecret"];
                };
            };
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
        };
    };
    sendWebhookTest: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Queued"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorBody"];
                };
            };
            429: components["responses"]["TooManyRequests"];
        };
    };
}
