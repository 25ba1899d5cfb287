"""A Prisma-generated migration history (``prisma migrate dev`` output, byte for byte in its
formatting: the ``-- CreateEnum`` / ``-- AlterEnum`` section comments, ``SERIAL NOT NULL`` keys with a
named ``_pkey`` constraint, ``TIMESTAMP(3)``, the five spaces after ``ADD COLUMN``, the warning
comment Prisma writes above several ``ADD VALUE`` statements), plus the hand edits teams make to
such files (``AFTER``/``BEFORE`` placement, a backfill, defaults written as casts by ``db pull``).

Each file says whether PostgreSQL refuses it for "unsafe use of new value" (``enum_failure``), and
each ``ADD COLUMN`` which table it touches, so a test can check the rules against the server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrismaMigration:
    name: str  # the Flyway-style name the rules are run under; Prisma's directory in ``prisma_dir``
    prisma_dir: str
    sql: str
    enum_failure: bool = False  # PostgreSQL refuses the file: a new enum value used in its transaction


PRISMA_HISTORY: tuple[PrismaMigration, ...] = (
    PrismaMigration(
        "V1__init.sql",
        "20230112094512_init",
        """-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateEnum
CREATE TYPE "OrderStatus" AS ENUM ('PENDING', 'PAID', 'SHIPPED');

-- CreateEnum
CREATE TYPE "PaymentStatus" AS ENUM ('PENDING', 'SETTLED', 'FAILED');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Order" (
    "id" SERIAL NOT NULL,
    "userId" INTEGER NOT NULL,
    "status" "OrderStatus" NOT NULL DEFAULT 'PENDING',
    "total" DECIMAL(65,30) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Order_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Payment" (
    "id" SERIAL NOT NULL,
    "orderId" INTEGER NOT NULL,
    "status" "PaymentStatus" NOT NULL DEFAULT 'PENDING',
    "note" TEXT,

    CONSTRAINT "Payment_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- AddForeignKey
ALTER TABLE "Order" ADD CONSTRAINT "Order_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Payment" ADD CONSTRAINT "Payment_orderId_fkey" FOREIGN KEY ("orderId") REFERENCES "Order"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
""",
    ),
    # two enum types get the same label in one migration: no value is used
    PrismaMigration(
        "V2__cancellations.sql",
        "20230220151208_cancellations",
        """-- AlterEnum
ALTER TYPE "OrderStatus" ADD VALUE 'CANCELLED';

-- AlterEnum
ALTER TYPE "PaymentStatus" ADD VALUE 'CANCELLED';
""",
    ),
    # Prisma's own warning comment above several values added to one enum
    PrismaMigration(
        "V3__more_roles.sql",
        "20230304110931_more_roles",
        """-- AlterEnum
-- This migration adds more than one value to an enum.
-- With PostgreSQL versions 11 and earlier, this is not possible
-- in a single migration. This can be worked around by creating
-- multiple migrations, each migration adding only one value to
-- the enum.


ALTER TYPE "Role" ADD VALUE 'MODERATOR';
ALTER TYPE "Role" ADD VALUE 'SUPPORT';
""",
    ),
    # hand-edited placement: the second value is placed relative to the first (not a use)
    PrismaMigration(
        "V4__refunds.sql",
        "20230411083350_refunds",
        """-- AlterEnum
ALTER TYPE "OrderStatus" ADD VALUE 'REFUNDED' AFTER 'SHIPPED';
ALTER TYPE "OrderStatus" ADD VALUE 'PARTIALLY_REFUNDED' BEFORE 'REFUNDED';
""",
    ),
    # a new enum and a column of it with a constant default (instant on PostgreSQL 11+)
    PrismaMigration(
        "V5__payment_method.sql",
        "20230502172215_payment_method",
        """-- CreateEnum
CREATE TYPE "PaymentMethod" AS ENUM ('CARD', 'BANK_TRANSFER', 'WALLET');

-- AlterTable
ALTER TABLE "Payment" ADD COLUMN     "method" "PaymentMethod" NOT NULL DEFAULT 'CARD';
""",
    ),
    # defaults as `prisma db pull` / pg_dump write them: casts of constants, no rewrite
    PrismaMigration(
        "V6__priorities_and_tiers.sql",
        "20230619090017_priorities_and_tiers",
        """-- CreateEnum
CREATE TYPE "Priority" AS ENUM ('LOW', 'NORMAL', 'HIGH');

-- CreateEnum
CREATE TYPE "Tier" AS ENUM ('FREE', 'PRO', 'ENTERPRISE');

-- AlterTable
ALTER TABLE "Order" ADD COLUMN     "priority" "Priority" NOT NULL DEFAULT 'NORMAL'::"Priority";

-- AlterTable
ALTER TABLE "User" ADD COLUMN     "tier" "Tier" NOT NULL DEFAULT "Tier"('FREE'),
ADD COLUMN     "roles" "Role"[] DEFAULT ARRAY['USER']::"Role"[];
""",
    ),
    # the same label again, on a text column of another table: not a use of the enum
    PrismaMigration(
        "V7__disputes.sql",
        "20230707140245_disputes",
        """-- AlterEnum
ALTER TYPE "PaymentStatus" ADD VALUE 'DISPUTED';

-- mark the payments support flagged by hand
UPDATE "Payment" SET "note" = 'DISPUTED' WHERE "note" = 'chargeback requested';
""",
    ),
    # the real mistake: a value added and used by a backfill in the same migration
    PrismaMigration(
        "V8__on_hold.sql",
        "20230815101522_on_hold",
        """-- AlterEnum
ALTER TYPE "OrderStatus" ADD VALUE 'ON_HOLD';

-- backfill: large unpaid orders wait for review
UPDATE "Order" SET "status" = 'ON_HOLD' WHERE "status" = 'PENDING' AND "total" > 10000;
""",
        enum_failure=True,
    ),
    # a volatile default: every row gets its own value, so the table is rewritten
    PrismaMigration(
        "V9__order_token.sql",
        "20230902121847_order_token",
        """-- AlterTable
ALTER TABLE "Order" ADD COLUMN     "token" UUID NOT NULL DEFAULT gen_random_uuid();
""",
    ),
    # a domain with a CHECK: PostgreSQL checks it by rewriting every row, even for NULL
    PrismaMigration(
        "V10__user_score.sql",
        "20231010075533_user_score",
        """CREATE DOMAIN "Score" AS INTEGER CHECK (VALUE BETWEEN 0 AND 100);

-- AlterTable
ALTER TABLE "User" ADD COLUMN     "score" "Score";
""",
    ),
    # the new value compared through a cast in a partial index of the same migration
    PrismaMigration(
        "V11__archived_orders.sql",
        "20231121164410_archived_orders",
        """-- AlterEnum
ALTER TYPE "OrderStatus" ADD VALUE 'ARCHIVED';

-- CreateIndex
CREATE INDEX "Order_archived_idx" ON "Order"("createdAt") WHERE "status" = 'ARCHIVED'::"OrderStatus";
""",
        enum_failure=True,
    ),
)

SEED_ROWS = """
INSERT INTO "User" ("email", "name") VALUES ('ada@example.com', 'Ada'), ('alan@example.com', 'Alan');
INSERT INTO "Order" ("userId", "total") VALUES (1, 12000), (1, 40), (2, 99.5);
INSERT INTO "Payment" ("orderId", "note") VALUES (1, 'chargeback requested'), (2, NULL);
"""
